use tidemark_cql::statement::*;
#[test]
fn probe() {
    let open = std::env::var("OPEN").unwrap();
    let kb: usize = std::env::var("KB").unwrap().parse().unwrap();
    let text = format!("INSERT INTO t (k) VALUES ({}1", open.repeat(200));
    let h = std::thread::Builder::new().stack_size(kb << 10).spawn(move || { let _ = parse_statement(&text); }).unwrap();
    h.join().unwrap();
}
