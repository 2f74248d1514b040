//! The `latent-lab` binary: with no subcommand it opens the window; subcommands work headless.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use latent_lab::cli;
use latent_lab::error::Error;

#[derive(Parser)]
#[command(
    name = "latent-lab",
    version,
    about = "Look inside the latent spaces of models that learn interpretable factors from symmetry"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model and save it as a checkpoint
    Train {
        /// the model family
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(cli::family_names()))]
        family: String,
        #[command(flatten)]
        flags: TrainFlags,
        #[arg(long)]
        out: PathBuf,
    },
    /// Metrics of a checkpoint (the family comes from its metadata)
    Eval {
        file: PathBuf,
        #[arg(long)]
        data: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Two checkpoints of one family: both evals and their differences (B - A)
    Compare {
        a: PathBuf,
        b: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Write a figure, audio or image of a checkpoint
    Export {
        file: PathBuf,
        /// sps-music: embedding (.png .svg), traversal (.png .svg .wav), scale (.wav);
        /// vae-relevance: relevance, kl, curves, scatter (.png .svg);
        /// ievae: traversal, traversal:K, swap (.png .svg); digit-classifier: confusion;
        /// every lab with a latent map: latent-map, interpolation[:A:B], directions[:I]
        /// (.png .svg; .wav for sps-music and v3-notes)
        #[arg(long)]
        figure: String,
        #[arg(long)]
        out: PathBuf,
        /// a second checkpoint of the same family: its figure beside the first's (a WAV
        /// plays the first model, then the second)
        #[arg(long, value_name = "B")]
        compare: Option<PathBuf>,
    },
    /// Convert a PyTorch checkpoint of the papers' official code
    Import {
        file: PathBuf,
        #[arg(long)]
        family: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure speed: train-step, decode, latency
    Bench {
        family: String,
        #[arg(long, default_value = "decode")]
        what: String,
        #[arg(long, default_value = "fast")]
        preset: String,
        #[arg(long)]
        json: bool,
    },
    /// Inputs (the model's own layout, .npy) to latent means (.npy)
    Encode {
        file: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Latents (.npy) to outputs: raw array (.npy), image (.png) or audio (.wav)
    Decode {
        file: PathBuf,
        #[arg(long)]
        latents: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

/// The settings of `train`, as the library's [`cli::TrainArgs`] takes them.
#[derive(clap::Args)]
struct TrainFlags {
    /// the family's preset: fast or paper (the paper's sizes); sps-music and sps-vision also
    /// no-symmetry and beta-vae, v3-* mlp, vae-relevance long and all-open
    #[arg(long, default_value = "fast")]
    preset: String,
    /// data source: a generator name (soundfont, circle, sphere, ee-mumu, pp-mumu, digits) or
    /// soundfont:PATH.sf2 (or .sf3), wav-dir:DIR, csv:PATH, lhe:PATH, idx:DIR, idx:IMAGES,LABELS
    #[arg(long)]
    data: Option<String>,
    /// training steps (default: the preset's)
    #[arg(long)]
    steps: Option<u64>,
    /// seed of the initial weights, the data and every random draw of training
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// training threads, 1 to 256 (default: every core; vae-relevance: 1)
    #[arg(long, value_parser = thread_count)]
    threads: Option<usize>,
    /// vae-relevance: latent dimensions (default 8); ievae: equivariant dimensions (default 8)
    #[arg(long)]
    latent: Option<usize>,
    /// vae-relevance: weight of the KL term (default 0.02); ievae: weight of z's KL (default 2)
    #[arg(long)]
    beta: Option<f64>,
    /// ievae: labelled training images in all, balanced over classes (semi-supervised);
    /// default: every image is labelled
    #[arg(long)]
    labels: Option<usize>,
    /// override a setting of the preset, KEY=VALUE (VALUE in JSON; nested keys joined by
    /// dots, as in a checkpoint's `config`), e.g. --set lr=2e-3 --set model.hidden=128;
    /// may be repeated
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl From<TrainFlags> for cli::TrainArgs {
    fn from(flags: TrainFlags) -> Self {
        Self {
            preset: flags.preset,
            data: flags.data,
            steps: flags.steps,
            seed: flags.seed,
            threads: flags.threads,
            latent: flags.latent,
            beta: flags.beta,
            labels: flags.labels,
            set: flags.set,
            snapshot_every: None,
            background: false,
        }
    }
}

/// candle asks how many threads to use at every matrix product and, when RAYON_NUM_THREADS is
/// unset, counts the physical cores by reading /proc/cpuinfo each time: about a thousand
/// reads per training step of the 3D lab, a tenth of its time. Its own answer, set once,
/// gives the same products without the reads.
#[allow(unsafe_code)] // std::env::set_var, sound before any thread starts
fn pin_candle_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = candle_core::utils::get_num_threads();
        // SAFETY: the first thing main does, while no other thread exists to read the
        // environment
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
}

fn main() -> ExitCode {
    pin_candle_threads();
    let args = Args::parse();
    let result = match args.command {
        None => latent_lab::app::run_window(latent_lab::registry::tabs()).map_err(Error::Failed),
        Some(Command::Train { family, flags, out }) => cli::train(&family, &flags.into(), &out),
        Some(Command::Eval { file, data, json }) => cli::eval(&file, data.as_deref(), json),
        Some(Command::Compare { a, b, json }) => cli::compare(&a, &b, json),
        Some(Command::Export {
            file,
            figure,
            out,
            compare,
        }) => cli::export(&file, &figure, &out, compare.as_deref()),
        Some(Command::Import { file, family, out }) => cli::import(&file, &family, &out),
        Some(Command::Bench {
            family,
            what,
            preset,
            json,
        }) => cli::bench(&family, &what, &preset, json),
        Some(Command::Encode { file, input, out }) => cli::encode(&file, &input, &out),
        Some(Command::Decode { file, latents, out }) => cli::decode(&file, &latents, &out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `--threads`: each thread is a real one with its own stack, so a count far beyond any
/// machine's cores only spends time starting them.
fn thread_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=256) => Ok(n),
        Ok(n) => Err(format!("{n} threads: give 1 to 256")),
        Err(e) => Err(e.to_string()),
    }
}
