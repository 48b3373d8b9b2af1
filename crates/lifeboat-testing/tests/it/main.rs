//! Integration tests of the helpers themselves, against a real `moto_server`
//! and the real filesystem.

mod fixtures;
mod moto;
