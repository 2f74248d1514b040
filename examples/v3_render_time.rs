fn main() {
    let t = std::time::Instant::now();
    let d = latent_lab::v3::data::load(latent_lab::v3::data::Domain::Notes, "soundfont", &|s| eprintln!("{s}")).unwrap();
    eprintln!("{} train {} test {} ood in {:?}", d.train.len(), d.test.len(), d.ood.len(), t.elapsed());
    let f = &d.train[0].fragments;
    let m: f32 = f.iter().sum::<f32>() / f.len() as f32;
    let mx = f.iter().cloned().fold(0f32, f32::max);
    eprintln!("mean {m} max {mx}");
}
