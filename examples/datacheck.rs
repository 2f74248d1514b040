use latent_lab::sps_music::{data::*, Lab};
fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap();
    let lab = Lab::load(std::path::Path::new(&path))?;
    let mut src = open_source("soundfont")?;
    let ds = Dataset::render(src.as_mut(), &|_| {})?;
    let seqs: Vec<&Sequence> = ds.test_seen.iter().take(12).collect();
    for s in seqs {
        let z = lab.encode(&s.features)?;
        let line: Vec<String> = z.iter().zip(s.pitches).map(|(z, p)| format!("{p}:{:.2},{:.2},{:.2}", z[0], z[1], z[2])).collect();
        println!("inst {} start {}: {}", s.instrument, s.start_pitch, line[..8].join(" "));
    }
    // reconstruction error of one note
    let s = &ds.test_seen[0];
    let z = lab.encode(&s.features)?;
    let rec = lab.decode_spectrum(&z[3])?;
    let x = s.note(3);
    let err: f32 = rec.iter().zip(x).map(|(a, b)| (a - b).abs()).sum::<f32>() / x.len() as f32;
    let mean: f32 = x.iter().sum::<f32>() / x.len() as f32;
    println!("mean abs err {err:.3}, mean feature {mean:.3}");
    let peak = |v: &[f32]| (0..513).max_by(|&a, &b| v[a * 5 + 2].total_cmp(&v[b * 5 + 2])).unwrap();
    println!("peak bin target {} recon {}", peak(x), peak(&rec));
    Ok(())
}
