use std::process::ExitCode;

fn main() -> ExitCode {
    // SIGPIPE stays ignored (Rust's default): a script on a server that
    // stops reading what foobar streams to it is an error to report, not
    // foobar's end. Standard output's reader gone ends foobar as it ends
    // any Unix tool (cli::write_stdout).
    foobar::cli::main()
}
