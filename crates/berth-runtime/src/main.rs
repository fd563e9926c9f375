fn main() {
    println!("berth-runtime");
}
