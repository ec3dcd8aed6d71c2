//! The `paywarden` binary: see `paywarden --help`.

fn main() -> std::process::ExitCode {
    paywarden::cli::main()
}
