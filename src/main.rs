use std::process::ExitCode;

fn main() -> ExitCode {
    // A reader that stops early (`foobar render | head`) ends foobar
    // quietly, as it ends any Unix tool, instead of a panic on EPIPE.
    // SAFETY: called before any thread starts; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    foobar::cli::main()
}
