//! The command line itself: usage errors and their exit code.

use crate::support::Engine;

#[test]
fn an_unknown_command_is_a_usage_error_with_exit_code_2() {
    Engine::new()
        .arg("frobnicate")
        .run()
        .code(2)
        .stderr_contains("unrecognized subcommand 'frobnicate'");
}

#[test]
fn help_lists_the_commands_and_exits_0() {
    Engine::new()
        .arg("--help")
        .run()
        .success()
        .stdout_contains("sim");
}
