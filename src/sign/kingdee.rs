//! Placeholder: the Kingdee signatures are being written (issue 3).
