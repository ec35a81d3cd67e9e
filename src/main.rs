fn main() {
    println!("annals command line: not yet");
}
