//! Tests of `storage.rs`, kept apart to keep that file short.

mod merges {
    //! Reconciliation edge cases across replicas: merges must be order-independent
    //! and deletions (range, collection, row) must shadow exactly what Cassandra's do.
    use super::super::*;
    use tidemark_cql::ColumnType;

    fn int(v: i32) -> Bytes {
        Bytes::copy_from_slice(&v.to_be_bytes())
    }

    fn row_at(ts: i64) -> Row {
        Row {
            marker: Some(Cell::live(ts, Bytes::new())),
            ..Row::default()
        }
    }

    fn part(rows: Vec<(i32, Row)>, ranges: Vec<RangeTombstone>) -> Partition {
        Partition {
            key: vec![int(1)],
            token: 7,
            deletion: None,
            rows: rows.into_iter().map(|(c, r)| (vec![int(c)], r)).collect(),
            ranges,
        }
    }

    fn merged(a: &Partition, b: &Partition) -> Partition {
        let mut m = Partition::default();
        m.merge(a);
        m.merge(b);
        m
    }

    /// Live clustering values, sorted numerically (storage keeps byte order).
    fn live_cks(p: &Partition) -> Vec<i32> {
        let mut v: Vec<i32> = p
            .live_view(0)
            .into_iter()
            .map(|(ck, _)| i32::from_be_bytes(ck[0][..].try_into().unwrap()))
            .collect();
        v.sort();
        v
    }

    fn del(ts: i64) -> Deletion {
        Deletion {
            timestamp: ts,
            local_deletion_time: 0,
        }
    }

    #[test]
    fn range_tombstone_shadows_older_rows_in_range_only() {
        // Replica A has rows -1..=4 written at 10 (and row 3 rewritten at 30);
        // replica B only has the deletion of (0, 3] at 20.
        let mut rows: Vec<(i32, Row)> = (-1..=4).map(|c| (c, row_at(10))).collect();
        rows[4] = (3, row_at(30));
        let a = part(rows, vec![]);
        let rt = RangeTombstone {
            prefix: vec![],
            lower: Some((int(0), false)),
            upper: Some((int(3), true)),
            ty: ColumnType::Int,
            deletion: del(20),
        };
        let b = part(vec![], vec![rt.clone()]);
        // Numeric, not byte, order: -1 is outside (0, 3] although 0xffffffff > 3.
        assert_eq!(live_cks(&merged(&a, &b)), vec![-1, 0, 3, 4]);
        assert_eq!(merged(&a, &b), merged(&b, &a));
        assert!(!rt.covers(&[int(0)]));
        assert!(rt.covers(&[int(3)]));
        assert!(rt.covers(&[int(1), int(99)]), "covers rows below a prefix");
    }

    #[test]
    fn prefix_range_tombstone() {
        let rt = RangeTombstone {
            prefix: vec![int(5)],
            lower: None,
            upper: None,
            ty: ColumnType::Int,
            deletion: del(1),
        };
        assert!(rt.covers(&[int(5), int(1)]));
        assert!(!rt.covers(&[int(6), int(1)]));
    }

    #[test]
    fn collection_overwrite_and_element_merges() {
        // Replica A: elements x@5 and y@7. Replica B: overwrite at 6 (deletion at 6,
        // as an overwrite at 7 writes ts - 1) with element z@7.
        let mut a = Row::default();
        let mut ca = Complex::default();
        ca.cells
            .insert(Bytes::from_static(b"x"), Cell::live(5, Bytes::new()));
        ca.cells
            .insert(Bytes::from_static(b"y"), Cell::live(7, Bytes::new()));
        a.complex.insert("s".into(), ca);
        let mut b = Row::default();
        let cb = Complex {
            deletion: Some(del(6)),
            cells: [(Bytes::from_static(b"z"), Cell::live(7, Bytes::new()))].into(),
        };
        b.complex.insert("s".into(), cb);
        let pa = part(vec![(0, a)], vec![]);
        let pb = part(vec![(0, b)], vec![]);
        let m = merged(&pa, &pb);
        assert_eq!(m, merged(&pb, &pa));
        let live = &m.live_view(0)[0].1;
        let elems: Vec<&[u8]> = live.complex["s"].iter().map(|(p, _)| &p[..]).collect();
        assert_eq!(elems, vec![&b"y"[..], &b"z"[..]]);
        // Flattened ground truth names elements by their path.
        let flat = &m.live_rows(0)[0].1;
        assert!(flat.contains_key("s[79]") && flat.contains_key("s[7a]"));
    }

    #[test]
    fn equal_timestamp_tombstone_wins_in_any_merge_order() {
        let mut live = Row::default();
        live.cells
            .insert("v".into(), Cell::live(9, Bytes::from_static(b"zz")));
        let mut dead = Row::default();
        dead.cells.insert("v".into(), Cell::tombstone(9, 100));
        let a = part(vec![(0, live)], vec![]);
        let b = part(vec![(0, dead)], vec![]);
        for m in [merged(&a, &b), merged(&b, &a)] {
            assert!(m.live_view(0).is_empty());
            assert!(m.rows[&vec![int(0)]].cells["v"].is_tombstone());
        }
    }

    #[test]
    fn row_deletion_does_not_shadow_newer_cells_and_marker_keeps_row() {
        let mut r = row_at(5);
        r.deletion = Some(del(6));
        r.cells
            .insert("v".into(), Cell::live(7, Bytes::from_static(b"new")));
        let p = part(vec![(0, r)], vec![]);
        let view = p.live_view(0);
        assert_eq!(view.len(), 1);
        assert_eq!(view[0].1.cells["v"].value, Bytes::from_static(b"new"));
        // Expired TTL cell and no live marker: the row is gone.
        let mut e = Row::default();
        e.cells.insert(
            "v".into(),
            Cell::expiring(1, Bytes::from_static(b"x"), 10, 100),
        );
        let p = part(vec![(0, e)], vec![]);
        assert_eq!(p.live_view(105).len(), 1);
        assert!(p.live_view(110).is_empty());
    }

    #[test]
    fn dump_shows_range_and_collection_deletions() {
        let mut s = NodeStore::default();
        let mut r = Row::default();
        r.complex.insert(
            "m".into(),
            Complex {
                deletion: Some(del(3)),
                cells: BTreeMap::new(),
            },
        );
        let rt = RangeTombstone {
            prefix: vec![],
            lower: Some((int(1), true)),
            upper: None,
            ty: ColumnType::Int,
            deletion: del(4),
        };
        s.apply(
            "ks",
            "t",
            &Bytes::from_static(b"k"),
            &part(vec![(0, r)], vec![rt]),
        );
        let cols: Vec<String> = s.dump().into_iter().map(|c| c.column).collect();
        assert!(
            cols.contains(&"m<collection deletion>".to_string()),
            "{cols:?}"
        );
        assert!(
            cols.contains(&"<range deletion [00000001..*>".to_string()),
            "{cols:?}"
        );
    }
}
