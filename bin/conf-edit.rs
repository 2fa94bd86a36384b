fn main() -> std::process::ExitCode {
    pgdr_conf::cli::main()
}
