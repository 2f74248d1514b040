//! Figures rendered to PNG and SVG and checked pixel by pixel, and the helpers that lay them out.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::grid::tile_cell;
use super::raster::base64;
use super::text::{fmt_number, fmt_sig3, linear_tick_format};
use super::*;

fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "latent-lab-figures-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Where figures are kept for a look after the tests (`FIGURES_KEEP=dir`), else `dir`.
fn out_dir(dir: &Path) -> PathBuf {
    match std::env::var_os("FIGURES_KEEP") {
        Some(keep) => {
            let p = PathBuf::from(keep);
            fs::create_dir_all(&p).unwrap();
            p
        }
        None => dir.to_path_buf(),
    }
}

const BLUE_S: (u8, u8, u8) = (0, 114, 178);
const ORANGE_S: (u8, u8, u8) = (230, 159, 0);

fn scatter() -> Figure {
    let pts: Vec<(f64, f64)> = (0..60)
        .map(|i| {
            let x = f64::from(i) / 10.0;
            (x, 0.8 * x + 0.3 + 0.4 * ((i * 37 % 11) as f64 / 11.0 - 0.5))
        })
        .collect();
    Figure::Scatter {
        title: "Predicted vs true rotation angle".into(),
        x_label: "true angle (rad)".into(),
        y_label: "latent z₁".into(),
        series: vec![Series::new("test set", pts, BLUE_S)],
        line: Some(Line::fit(0.8, 0.3, 0.973)),
    }
}

fn lines(log_y: bool) -> Figure {
    let curve = |k: f64| {
        (0..200)
            .map(|i| (f64::from(i) * 50.0, 2.0 * (-f64::from(i) / k).exp() + 0.01))
            .collect()
    };
    Figure::Lines {
        title: if log_y {
            "Training loss (log scale)"
        } else {
            "Training loss"
        }
        .into(),
        x_label: "step".into(),
        y_label: "loss".into(),
        series: vec![
            Series::new("reconstruction", curve(30.0), BLUE_S),
            Series::new("KL", curve(60.0), ORANGE_S),
        ],
        log_y,
    }
}

fn noise_tile(w: usize, h: usize, seed: u32) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..w * h * 3)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        })
        .collect()
}

fn grid(n: usize, cols: usize, tw: usize, th: usize, captions: Vec<String>) -> Figure {
    Figure::ImageGrid {
        title: "Reconstructions".into(),
        tile_w: tw,
        tile_h: th,
        cols,
        tiles: (0..n).map(|i| noise_tile(tw, th, i as u32)).collect(),
        captions,
    }
}

fn heatmap(n: usize, m: usize) -> Figure {
    Figure::Heatmap {
        title: "Mutual information: factors × latents".into(),
        rows: (0..n).map(|i| format!("factor {i}")).collect(),
        cols: (0..m).map(|j| format!("z{j}")).collect(),
        values: (0..n)
            .map(|i| {
                (0..m)
                    .map(|j| ((i * 7 + j * 3) % 10) as f64 / 9.0)
                    .collect()
            })
            .collect(),
    }
}

fn decode(path: &Path) -> image::RgbImage {
    image::open(path).unwrap().to_rgb8()
}

fn count_color(img: &image::RgbImage, c: (u8, u8, u8)) -> usize {
    img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count()
}

fn no_tmp_left(dir: &Path) {
    let tmps: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(tmps.is_empty(), "left behind: {tmps:?}");
}

fn check_pair(fig: &Figure, stem: &str, colors: &[(u8, u8, u8)], title: &str) {
    let dir = scratch_dir(stem);
    let out = out_dir(&dir);
    let png = out.join(format!("{stem}.png"));
    let svg = out.join(format!("{stem}.svg"));
    save(fig, &png).unwrap();
    save(fig, &svg).unwrap();
    let img = decode(&png);
    assert_eq!((img.width(), img.height()), figure_size(fig).unwrap());
    assert!(count_color(&img, (255, 255, 255)) > 0, "white background");
    for &c in colors {
        assert!(count_color(&img, c) > 20, "{stem}: colour {c:?} missing");
    }
    let text = fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg"));
    assert!(text.contains(title), "{stem}: SVG lacks the title");
    assert!(
        !tmp_path(&png).exists() && !tmp_path(&svg).exists(),
        "{stem}: .tmp left behind"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn scatter_png_and_svg() {
    check_pair(
        &scatter(),
        "scatter",
        &[BLUE_S],
        "Predicted vs true rotation angle",
    );
    let fig = scatter();
    let dir = scratch_dir("scatter-size");
    let p = dir.join("s.PNG");
    save(&fig, &p).unwrap();
    assert_eq!(decode(&p).dimensions(), (1200, 800));
    let svg = dir.join("s.svg");
    save(&fig, &svg).unwrap();
    let text = fs::read_to_string(&svg).unwrap();
    assert!(text.contains("R² = 0.973"), "fit R² in the legend");
    assert!(text.contains("width=\"1200\"") && text.contains("height=\"800\""));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn lines_png_and_svg() {
    check_pair(&lines(false), "lines", &[BLUE_S, ORANGE_S], "Training loss");
    check_pair(
        &lines(true),
        "lines-log",
        &[BLUE_S, ORANGE_S],
        "Training loss (log scale)",
    );
}

#[test]
fn lines_with_gaps_and_bad_values() {
    let mut pts: Vec<(f64, f64)> = (0..50)
        .map(|i| (f64::from(i), f64::from(i).sin() + 1.5))
        .collect();
    pts[10].1 = f64::NAN;
    pts[20].1 = -1.0; // dropped on a log axis
    pts[30].0 = f64::INFINITY;
    let fig = Figure::Lines {
        title: "gaps".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        series: vec![Series::new("", pts, BLUE_S)],
        log_y: true,
    };
    check_pair(&fig, "lines-gaps", &[BLUE_S], "gaps");
}

#[test]
fn image_grid_png_and_svg() {
    let captions: Vec<String> = (0..12).map(|i| format!("sample {i}")).collect();
    let fig = grid(12, 4, 32, 32, captions);
    check_pair(&fig, "grid", &[], "Reconstructions");
    // Tiles are upscaled with nearest neighbour: a 32x32 tile covers 96x96 pixels in 3x3 blocks.
    let dir = scratch_dir("grid-crisp");
    let p = dir.join("g.png");
    save(&fig, &p).unwrap();
    let img = decode(&p);
    let layout = grid_layout(&fig).unwrap();
    // 12 tiles in 4 columns: drawn 7x (224 px); a 10x10 grid draws them 3x (96 px).
    assert_eq!(layout.cell, (224, 224));
    let k = 7;
    let (x, y) = layout.origins[5];
    let Figure::ImageGrid { tiles, .. } = &fig else {
        unreachable!()
    };
    for ty in 0..32 {
        for tx in 0..32 {
            let src = &tiles[5][(ty * 32 + tx) * 3..][..3];
            for (dx, dy) in [(0, 0), (k - 1, k - 1), (3, k - 1), (k - 1, 0)] {
                let px = img.get_pixel(
                    (x + tx as i32 * k + dx) as u32,
                    (y + ty as i32 * k + dy) as u32,
                );
                assert_eq!(&px.0[..], src, "tile pixel ({tx},{ty})");
            }
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn image_grid_headers_and_spectrogram_tiles() {
    // 2 rows x 3 columns of 5-frame, 513-bin spectrograms, with column and row headers.
    let tiles: Vec<Vec<u8>> = (0..6)
        .map(|i| {
            (0..513 * 5)
                .flat_map(|p| viridis(((p / 5 + i * 40) % 513) as f32 / 512.0))
                .collect()
        })
        .collect();
    let mut captions: Vec<String> = ["pitch −", "original", "pitch +"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    captions.extend(["speaker A".to_string(), "speaker B".to_string()]);
    let fig = Figure::ImageGrid {
        title: "Spectrogram traversals".into(),
        tile_w: 5,
        tile_h: 513,
        cols: 3,
        tiles,
        captions,
    };
    let layout = grid_layout(&fig).unwrap();
    assert_eq!(layout.cell, (260, 513));
    assert_eq!(layout.col_headers.len(), 3);
    assert_eq!(layout.row_headers.len(), 2);
    check_pair(&fig, "grid-spectrogram", &[], "Spectrogram traversals");
    assert_eq!(tile_cell(513, 5, 3, 2), (513, 260));
    assert_eq!(tile_cell(28, 28, 10, 10), (112, 112));
    assert_eq!(tile_cell(32, 32, 10, 10), (96, 96));
    assert_eq!(tile_cell(64, 64, 10, 10), (128, 128));
    assert_eq!(tile_cell(1024, 1024, 10, 10), (256, 256));
    assert_eq!(tile_cell(1024, 1024, 1, 1), (1024, 1024));
    assert_eq!(tile_cell(4000, 3000, 1, 1), (1600, 1200));
    // One wide spectrogram strip (25 notes x 5 frames, 257 bins): drawn big, 4 px per frame.
    assert_eq!(tile_cell(125, 257, 1, 1), (500, 771));
}

#[test]
fn image_grid_single_strip() {
    // A traversal strip as the CLI makes it: 25 notes x 5 frames wide, 257 bins tall.
    let (w, h) = (125, 257);
    let strip: Vec<u8> = (0..w * h)
        .flat_map(|p| viridis((((p % w) / 5) as f32 / 24.0 + (p / w) as f32 / 256.0) / 2.0))
        .collect();
    let fig = Figure::image(
        "Decoded spectra along the pitch latent (0-8 kHz, 25 steps)",
        w,
        h,
        strip,
    );
    assert_eq!(grid_layout(&fig).unwrap().cell, (500, 771));
    check_pair(&fig, "grid-strip", &[], "Decoded spectra");
}

#[test]
fn image_grid_10x10_svg_stays_small() {
    let fig = grid(100, 10, 32, 32, Vec::new());
    let dir = scratch_dir("grid-big");
    let out = out_dir(&dir);
    let svg = out.join("grid-10x10.svg");
    save(&fig, &svg).unwrap();
    let len = fs::metadata(&svg).unwrap().len();
    eprintln!("10x10 grid of 32x32 noise tiles: SVG {len} bytes");
    assert!(len < 3_000_000, "SVG is {len} bytes");
    let png = out.join("grid-10x10.png");
    save(&fig, &png).unwrap();
    let img = decode(&png);
    assert_eq!(img.dimensions(), figure_size(&fig).unwrap());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn heatmap_png_and_svg() {
    let fig = heatmap(6, 10);
    let low = viridis(0.0);
    let high = viridis(1.0);
    check_pair(
        &fig,
        "heatmap",
        &[(low[0], low[1], low[2]), (high[0], high[1], high[2])],
        "Mutual information",
    );
    let dir = scratch_dir("heatmap-values");
    let p = dir.join("h.svg");
    save(&fig, &p).unwrap();
    let text = fs::read_to_string(&p).unwrap();
    assert!(
        text.contains("\n1.00\n") && text.contains("\n0.33\n"),
        "cell values are printed"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn heatmap_large_and_unlabelled() {
    let values: Vec<Vec<f64>> = (0..120)
        .map(|i| {
            (0..90)
                .map(|j| (f64::from(i) * 0.1).sin() * (f64::from(j) * 0.07).cos())
                .collect()
        })
        .collect();
    let mut values = values;
    values[3][4] = f64::NAN;
    let fig = Figure::Heatmap {
        title: "Large matrix".into(),
        rows: Vec::new(),
        cols: Vec::new(),
        values,
    };
    check_pair(&fig, "heatmap-large", &[], "Large matrix");
}

#[test]
fn heatmap_long_labels() {
    let cols: Vec<String> = (0..16).map(|j| format!("latent dimension {j}")).collect();
    let rows: Vec<String> = [
        "object hue",
        "floor hue",
        "wall hue",
        "scale",
        "shape",
        "orientation",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let values: Vec<Vec<f64>> = (0..6)
        .map(|i| {
            (0..16)
                .map(|j| {
                    if j == i * 2 {
                        0.9 - 0.1 * i as f64
                    } else {
                        0.02 * ((i + j) % 5) as f64
                    }
                })
                .collect()
        })
        .collect();
    let fig = Figure::Heatmap {
        title: "MIG: factor × latent mutual information (nats)".into(),
        rows,
        cols,
        values,
    };
    check_pair(&fig, "heatmap-long-labels", &[], "MIG: factor");
}

#[test]
fn degenerate_inputs_still_render() {
    let dir = scratch_dir("degenerate");
    let one = |log_y| Figure::Lines {
        title: "one point".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        series: vec![
            Series::new("only", vec![(3.0, 5.0)], BLUE_S),
            Series::new("empty", Vec::new(), ORANGE_S),
        ],
        log_y,
    };
    let flat = Figure::Scatter {
        title: "constant".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        series: vec![Series::new("same", vec![(1.0, 0.0); 5], BLUE_S)],
        line: Some(Line::fit(1e9, -4.0, f64::NAN)),
    };
    let tiny = Figure::Heatmap {
        title: String::new(),
        rows: vec!["a".into()],
        cols: vec!["b".into()],
        values: vec![vec![2.5]],
    };
    let single = grid(1, 8, 3, 7, vec![String::new()]);
    let huge_values = Figure::Heatmap {
        title: "big numbers".into(),
        rows: Vec::new(),
        cols: Vec::new(),
        values: vec![vec![1e7, -2e6], vec![f64::INFINITY, 3.0]],
    };
    for (i, fig) in [one(false), one(true), flat, tiny, single, huge_values]
        .iter()
        .enumerate()
    {
        for ext in ["png", "svg"] {
            let p = out_dir(&dir).join(format!("degenerate-{i}.{ext}"));
            save(fig, &p).unwrap_or_else(|e| panic!("figure {i}: {e:#}"));
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn viridis_ends() {
    assert_eq!(viridis(0.0), [68, 1, 84]);
    assert_eq!(viridis(1.0), [253, 231, 37]);
    assert_eq!(viridis(0.5), [33, 145, 140]);
    assert_eq!(viridis(-3.0), viridis(0.0));
    assert_eq!(viridis(7.0), viridis(1.0));
    assert_eq!(viridis(f32::NAN), viridis(0.0));
}

#[test]
fn unsupported_extension_names_the_path() {
    let dir = scratch_dir("ext");
    for name in ["figure.txt", "figure"] {
        let p = dir.join(name);
        let err = save(&scatter(), &p).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        assert!(!p.exists());
    }
    no_tmp_left(&dir);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn missing_directory_fails_cleanly() {
    let dir = scratch_dir("missing");
    let p = dir.join("no-such-dir").join("fig.png");
    let err = save(&scatter(), &p).unwrap_err();
    assert!(format!("{err:#}").contains("fig.png"));
    assert!(!dir.join("no-such-dir").exists());
    no_tmp_left(&dir);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn failed_render_keeps_existing_file() {
    let dir = scratch_dir("keep");
    for name in ["fig.png", "fig.svg"] {
        let p = dir.join(name);
        fs::write(&p, b"previous figure").unwrap();
        let empty = Figure::Scatter {
            title: "empty".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series::new("nothing", vec![(f64::NAN, 1.0)], BLUE_S)],
            line: None,
        };
        let err = save(&empty, &p).unwrap_err();
        assert!(format!("{err:#}").contains("no finite points"), "{err:#}");
        let bad_grid = Figure::ImageGrid {
            title: "bad".into(),
            tile_w: 4,
            tile_h: 4,
            cols: 2,
            tiles: vec![vec![0; 47]],
            captions: Vec::new(),
        };
        assert!(save(&bad_grid, &p).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"previous figure");
    }
    no_tmp_left(&dir);
    let _ = fs::remove_dir_all(&dir);
}

/// A read-only directory makes the write fail after rendering; root ignores the permission,
/// in which case there is nothing to test and the test says so.
#[cfg(unix)]
#[test]
fn read_only_directory_keeps_existing_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = scratch_dir("readonly");
    let p = dir.join("fig.png");
    fs::write(&p, b"previous figure").unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    let probe = dir.join("probe");
    if fs::write(&probe, b"x").is_ok() {
        let _ = fs::remove_file(&probe);
        eprintln!("skipped: running as root, a read-only directory is still writable");
    } else {
        assert!(save(&scatter(), &p).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"previous figure");
        no_tmp_left(&dir);
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn grid_caption_counts() {
    assert!(grid_layout(&grid(6, 3, 8, 8, vec!["a".into(); 4])).is_err());
    assert_eq!(
        grid_layout(&grid(6, 3, 8, 8, vec!["a".into(); 6]))
            .unwrap()
            .tile_captions
            .len(),
        6
    );
    assert_eq!(
        grid_layout(&grid(6, 3, 8, 8, vec!["a".into(); 3]))
            .unwrap()
            .col_headers
            .len(),
        3
    );
    let l = grid_layout(&grid(6, 3, 8, 8, vec!["a".into(); 5])).unwrap();
    assert_eq!((l.col_headers.len(), l.row_headers.len()), (3, 2));
}

#[test]
fn number_formats() {
    let f = linear_tick_format(&[0.0, 0.25, 0.5, 0.75, 1.0]);
    assert_eq!([f(&0.0), f(&0.25), f(&1.0)], ["0.00", "0.25", "1.00"]);
    let f = linear_tick_format(&[0.0, 0.1, 0.2, 0.30000000000000004]);
    assert_eq!(f(&0.30000000000000004), "0.3");
    let f = linear_tick_format(&[0.0, 2000.0, 4000.0]);
    assert_eq!(f(&4000.0), "4000");
    assert_eq!(fmt_number(0.001), "0.001");
    assert_eq!(fmt_number(1e-5), "1e-5");
    assert_eq!(fmt_number(100.0), "100");
    assert_eq!(fmt_sig3(0.8), "0.8");
    assert_eq!(fmt_sig3(1.2345), "1.23");
    assert_eq!(base64(b"Man"), "TWFu");
    assert_eq!(base64(b"Ma"), "TWE=");
    assert_eq!(base64(b"M"), "TQ==");
}
