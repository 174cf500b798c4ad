//! `cnnp`: the playground's core from the command line (train, bench).

#[cfg(not(target_arch = "wasm32"))]
mod cli;

fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    std::process::exit(cli::run());
}
