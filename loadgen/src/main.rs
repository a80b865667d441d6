fn main() {
    eprintln!("loadgen: not built yet (see issue 6)");
    std::process::exit(2);
}
