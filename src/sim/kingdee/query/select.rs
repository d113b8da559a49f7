//! Choosing a query's rows: one per bill, or one per entry row as soon as a field, filter
//! or order key is an entry key; then the filter, the order (`FID ASC`, the store's order, by
//! default) and the page (`StartRow`, `Limit`, `TopRowCount` as an absolute end row).
//! Pure: it reads the store and base data and changes nothing.

use std::cmp::Ordering;

use crate::sim::kingdee::basedata::BaseData;
use crate::sim::kingdee::bills::BillStore;
use crate::sim::kingdee::filter::Scalar;
use crate::sim::kingdee::query::columns::{Column, Row, Source, compare_scalars, value};
use crate::sim::kingdee::query::request::Request;

/// The rows of one page of `request`, in order, before projection.
pub(super) fn select<'a>(
    request: &Request,
    store: &'a BillStore,
    basedata: &'a BaseData,
) -> Vec<Row<'a>> {
    let (source, columns, filter, filter_columns, order) = (
        request.source,
        &request.columns,
        &request.filter,
        &request.filter_columns,
        &request.order,
    );
    let (start, limit, top) = (request.start, request.limit, request.top);
    let is_entry = |column: &Column| matches!(column, Column::Bill(column) if column.is_entry());
    let per_entry = columns.iter().any(is_entry)
        || filter_columns.iter().any(|(_, column)| is_entry(column))
        || order.iter().any(|(column, _)| is_entry(column));
    let mut rows: Vec<Row<'_>> = match source {
        Source::Bills => store
            .bills()
            .iter()
            .flat_map(|bill| {
                if per_entry && !bill.entries.is_empty() {
                    bill.entries
                        .iter()
                        .map(|row| Row::Bill(bill, Some(row)))
                        .collect::<Vec<_>>()
                } else {
                    vec![Row::Bill(bill, None)]
                }
            })
            .collect(),
        Source::Base(table) => basedata.records(table).map(Row::Base).collect(),
    };
    if let Some(filter) = &filter {
        rows.retain(|row| {
            let lookup = |key: &str| {
                let lower = key.to_ascii_lowercase();
                filter_columns
                    .iter()
                    .find(|(name, _)| *name == lower)
                    .map_or(Scalar::Null, |(_, column)| value(*column, *row, basedata))
            };
            filter.matches(&lookup)
        });
    }
    if !order.is_empty() {
        rows.sort_by(|a, b| {
            order
                .iter()
                .map(|(column, descending)| {
                    let ordering = compare_scalars(
                        &value(*column, *a, basedata),
                        &value(*column, *b, basedata),
                    );
                    if *descending {
                        ordering.reverse()
                    } else {
                        ordering
                    }
                })
                .find(|ordering| *ordering != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
    }
    let start = start as usize;
    let mut end = rows.len();
    if top > 0 {
        end = end.min(top as usize);
    }
    if limit > 0 {
        end = end.min(start.saturating_add(limit as usize));
    }
    if start < end {
        rows[start..end].to_vec()
    } else {
        Vec::new()
    }
}
