fn main() -> std::process::ExitCode {
    pgdr_docgen::register();
    pgdr_snap::cli_prune::main()
}
