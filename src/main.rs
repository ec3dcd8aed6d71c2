//! The `paywarden` binary: see `paywarden --help`.

/// mimalloc instead of the system allocator: a request allocates and frees
/// many small buffers across threads, which glibc's malloc serves slowly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    paywarden::cli::main()
}
