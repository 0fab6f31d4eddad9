//! The learner's subcommands, one file per command or per close group;
//! `main.rs` parses the arguments and calls them. The author's and CI's
//! commands (`verify`, `bench`, `book`, the mdBook preprocessor, `watch`)
//! have their own modules beside `main.rs`.

pub mod check;
pub mod digests;
pub mod list;
pub mod show;
pub mod start;
