//! A sheet of generated digits (one row per writer, the ten digits across) as a PNG, to see
//! the writers' variety: `cargo run --release --example digit_sheet -- OUT.png [WRITERS] [SEED]`.

use latent_lab::digits::{SIDE, Writer, render, render::writer_rng};
use latent_lab::figures::{Figure, save};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "digits.png".into());
    let writers: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(12);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut tiles = Vec::new();
    for id in 0..writers {
        let mut rng = writer_rng(id, seed);
        let w = Writer::random(id, &mut rng);
        for d in 0..10 {
            let img = render(d, &w, &mut rng);
            tiles.push(
                img.iter()
                    .flat_map(|&p| {
                        let v = ((1.0 - p) * 255.0) as u8;
                        [v, v, v]
                    })
                    .collect(),
            );
        }
    }
    save(
        &Figure::ImageGrid {
            title: format!("generated digits, {writers} writers (seed {seed})"),
            tile_w: SIDE,
            tile_h: SIDE,
            cols: 10,
            tiles,
            captions: (0..10).map(|d| d.to_string()).collect(),
        },
        std::path::Path::new(&out),
    )?;
    eprintln!("wrote {out}");
    Ok(())
}
