use latent_lab::sps_music::{data::*, train::*};
use latent_lab::worker::Trainer;
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let lr: f64 = args[1].parse()?;
    let mlp0: usize = args[2].parse()?;
    let steps: u64 = args[3].parse()?;
    let mut cfg = TrainConfig::preset("fast")?;
    cfg.lr = lr;
    let _ = mlp0;
    cfg.warmup_steps = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(100000);
    cfg.steps = steps;
    let mut src = open_source("soundfont")?;
    let mut ds = Dataset::render(src.as_mut(), &|_| {})?;
    if let Some(n) = args.get(5) { let n: usize = n.parse()?; ds.train.truncate(n); }
    let mut t = SpsTrainer::new(cfg, ds, 0)?;
    let start = std::time::Instant::now();
    for i in 1..=steps {
        let s = t.step()?;
        if i % 100 == 0 {
            let m = t.evaluate()?;
            println!("lr {lr} fourier {mlp0} step {i} loss {:.0} r2 {:.3} {:.3} t {:.0}s", s.total(), m[0].1, m[1].1, start.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
