fn main() -> std::process::ExitCode {
    pgdr_snap::cli_prune::main()
}
