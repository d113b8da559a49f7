//! Placeholder: the Qimen/TOP signature is being written (issue 3).
