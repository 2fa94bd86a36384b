// A 100,000-line pg_hba.conf is parsed into many small allocations; mimalloc makes them cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pgdr_docgen::register();
    pgdr_hba::cli::main()
}
