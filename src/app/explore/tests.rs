#![allow(clippy::unwrap_used)]
use super::*;

/// A decoder you can check by hand: a 2x2 grey image of (z0, z1, z0 + z1, 0.5).
struct Toy;

impl Titled for Toy {
    fn title(&self) -> String {
        "toy".into()
    }
}

impl Explore for Toy {
    fn dims(&self) -> usize {
        3
    }
    fn samples(&self) -> anyhow::Result<MapSamples> {
        let latents: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let t = i as f32 / 40.0;
                vec![t, 1.0 - t, 0.1 * (i % 3) as f32]
            })
            .collect();
        Ok(MapSamples {
            colourings: vec![
                Colouring {
                    name: "parity".into(),
                    values: ColourValues::Categories {
                        names: vec!["even".into(), "odd".into()],
                        of: (0..40).map(|i| i % 2).collect(),
                    },
                },
                Colouring {
                    name: "t".into(),
                    values: ColourValues::Continuous((0..40).map(|i| i as f32).collect()),
                },
            ],
            labels: (0..40).map(|i| format!("#{i}")).collect(),
            latents,
        })
    }
    fn decode_latent(&self, z: &[f32]) -> anyhow::Result<Decoded> {
        Ok(Decoded {
            values: vec![z[0], z[1], z[0] + z[1], 0.5],
            output: Output::Images {
                count: 1,
                channels: 1,
                height: 2,
                width: 2,
                ink: false,
            },
        })
    }
    fn prior_path(&self, a: &[f32], b: &[f32], n: usize) -> Option<Vec<Vec<f32>>> {
        Some(latent_map::interpolate(b, a, n).into_iter().rev().collect())
    }
}

#[test]
fn continuous_colours_cover_every_sample_once_in_order() {
    let s = Toy.samples().unwrap();
    let g = groups(&s.colourings[1], 40);
    assert_eq!(g.len(), CONTINUOUS_BINS);
    let mut all: Vec<usize> = g.iter().flat_map(|g| g.members.clone()).collect();
    all.sort();
    assert_eq!(all, (0..40).collect::<Vec<_>>());
    // bins follow the value: every member of a bin is below every member of the next
    for w in g.windows(2) {
        let max = w[0].members.iter().max().unwrap();
        let min = w[1].members.iter().min().unwrap();
        assert!(max < min);
    }
}

#[test]
fn interpolation_and_directions_of_a_known_decoder() {
    let s = Toy.samples().unwrap();
    s.check(3).unwrap();
    let i = Interpolation::compute(&Toy, &s, 0, 39).unwrap();
    assert_eq!(i.linear.latents[0], s.latents[0]);
    assert_eq!(i.linear.latents[INTERPOLATION_LEN - 1], s.latents[39]);
    assert_eq!(i.linear.decoded[0], Toy.decode(&s.latents[0]).unwrap());
    let prior = &i.prior.as_ref().unwrap().1;
    assert_eq!(prior.latents.len(), INTERPOLATION_LEN);
    // J^T J = [[2, 1, 0], [1, 2, 0], [0, 0, 0]]: singular values sqrt(3) along (1, 1, 0),
    // 1 along (1, -1, 0), and none along z2, which the decoder ignores
    let d = Directions::compute(&Toy, &s, &[0.2, 0.3, 0.0]).unwrap();
    assert_eq!(d.list.len(), 3);
    assert!(
        (d.list[0].singular_value - 3f64.sqrt()).abs() < 1e-3,
        "{:?}",
        d.list
    );
    assert!((d.list[1].singular_value - 1.0).abs() < 1e-3);
    assert!(d.list[2].singular_value < 1e-3);
    assert_eq!(d.traversals.len(), SHOWN_DIRECTIONS);
    assert_eq!(d.traversals[0].1.latents[2], vec![0.2, 0.3, 0.0]);
}

#[test]
fn figures_of_images_have_a_tile_per_step() {
    let s = Toy.samples().unwrap();
    let i = Interpolation::compute(&Toy, &s, 0, 39).unwrap();
    let Figure::ImageGrid {
        tiles,
        cols,
        captions,
        ..
    } = strips_figure("t", &i.rows(), &interpolation_headers(INTERPOLATION_LEN)).unwrap()
    else {
        panic!("not a grid")
    };
    assert_eq!(
        (tiles.len(), cols),
        (2 * INTERPOLATION_LEN, INTERPOLATION_LEN)
    );
    assert_eq!(captions.len(), INTERPOLATION_LEN + 2);
    let Figure::Scatter { series, .. } =
        map_figure("t", &s, &Toy.dim_names(), Projection::Pca, 0).unwrap()
    else {
        panic!("not a scatter")
    };
    assert_eq!(series.iter().map(|s| s.points.len()).sum::<usize>(), 40);
}

#[test]
fn slerp_keeps_the_norm_between_the_ends_and_hits_them() {
    let (a, b) = ([2.0f32, 0.0, 0.0], [0.0f32, 2.0, 0.0]);
    let path = slerp_path(&a, &b, 5);
    assert_eq!(path[0], a.to_vec());
    assert_eq!(path[4], b.to_vec());
    for z in &path {
        let n = z.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 2.0).abs() < 1e-5, "{z:?}");
    }
    // the midpoint is on the bisector, not the chord's middle (norm sqrt 2)
    assert!((path[2][0] - 2f32.sqrt()).abs() < 1e-5);
}

#[test]
fn navigation_figure_names_parse() {
    assert_eq!(
        NavFigure::parse("latent-map").unwrap().unwrap(),
        NavFigure::Map
    );
    assert_eq!(
        NavFigure::parse("interpolation:3:7").unwrap().unwrap(),
        NavFigure::Interpolation(Some((3, 7)))
    );
    assert_eq!(
        NavFigure::parse("directions:2").unwrap().unwrap(),
        NavFigure::Directions(Some(2))
    );
    assert!(NavFigure::parse("interpolation:x").unwrap().is_err());
    assert!(NavFigure::parse("traversal").is_none());
}
