//! Writing a frame as Parquet, with lists of strings dictionary-encoded.
//!
//! polars' Parquet writer dictionary-encodes flat columns but writes the values of list
//! columns plainly: `product_mix`'s `sku_types_purchased` (millions of short names drawn
//! from a few hundred) came out as 53 MB of raw strings, compressed to 7.5 MB at a cost of
//! about half a second (zstd) on every run, full or incremental. Here a list of strings is
//! handed to polars' own page writer as a list of dictionary indexes into its distinct
//! values: the pages hold the names once and a few bits per entry. The file's schema (and
//! the Arrow schema stored in it) is the frame's, so every reader sees the same `list<str>`
//! column as before; only the encoding of its pages differs (`RLE_DICTIONARY`, which every
//! Parquet reader supports). Frames without such a column go through polars' writer as
//! they are.

use polars::polars_utils::aliases::PlHashMap;
use polars::prelude::{
    ArrowDataType, CompatLevel, DataFrame, DataType, ParquetCompression, ParquetWriter,
    PolarsResult, SchemaExt, StatisticsOptions,
};
use polars_arrow::array::{
    Array, DictionaryArray, ListArray, MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray,
};
use polars_arrow::datatypes::IntegerType;
use polars_parquet::read::ParquetError;
use polars_parquet::write::{
    array_to_columns, get_dtype_encoding, to_parquet_schema, Compressor, DynIter,
    DynStreamingIterator, Encoding, FallibleStreamingIterator, FileWriter, Version, WriteOptions,
};

/// Rows per row group, as polars' writer groups them.
const ROW_GROUP_ROWS: usize = 512 * 512;

/// Writes `df` to `w` as Parquet with polars' default compression and statistics.
pub fn write_parquet<W: std::io::Write>(df: &mut DataFrame, w: W) -> PolarsResult<()> {
    write_parquet_with(df, w, ParquetCompression::default())
}

/// [`write_parquet`] with another compression.
pub fn write_parquet_with<W: std::io::Write>(
    df: &mut DataFrame,
    w: W,
    compression: ParquetCompression,
) -> PolarsResult<()> {
    let has_string_lists = df
        .columns()
        .iter()
        .any(|c| matches!(c.dtype(), DataType::List(inner) if **inner == DataType::String));
    if !has_string_lists {
        ParquetWriter::new(w)
            .with_compression(compression)
            .finish(df)?;
        return Ok(());
    }
    let schema = df.schema().to_arrow(CompatLevel::newest());
    let parquet_schema = to_parquet_schema(&schema)?;
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        compression: compression.into(),
        version: Version::V1,
        data_page_size: None,
    };
    let mut writer = FileWriter::try_new(w, schema.clone(), options)?;
    df.rechunk_mut_par();
    let groups = (0..df.height()).step_by(ROW_GROUP_ROWS);
    let batches = groups.flat_map(|at| {
        let group = df.slice(at as i64, ROW_GROUP_ROWS);
        group
            .iter_chunks(CompatLevel::newest(), false)
            .collect::<Vec<_>>()
    });
    for batch in batches {
        let rows = batch.len();
        if rows == 0 {
            continue;
        }
        let mut columns = Vec::new();
        for ((array, field), ptype) in batch
            .columns()
            .iter()
            .zip(schema.iter_values())
            .zip(parquet_schema.fields())
        {
            let (array, encodings) = match dictionary_encoded(array.as_ref()) {
                Some(dict) => (dict, vec![Encoding::RleDictionary]),
                None => (array.clone(), get_dtype_encoding(&field.dtype)),
            };
            for pages in array_to_columns(&array, ptype.clone(), options, &encodings)? {
                // The compressor takes the page format's own errors.
                let pages =
                    pages.map(|p| p.map_err(|e| ParquetError::FeatureNotSupported(format!("{e}"))));
                let compressed = Compressor::new_from_vec(pages, options.compression, Vec::new())
                    .map_err(polars::prelude::PolarsError::from);
                columns.push(Ok(DynStreamingIterator::new(compressed)));
            }
        }
        writer.write(rows as u64, DynIter::new(columns.into_iter()))?;
    }
    writer.end(None)?;
    Ok(())
}

/// A large list of UTF-8 views as the same list of dictionary indexes (u32) into its
/// distinct values, in first-seen order; `None` for any other array.
fn dictionary_encoded(array: &dyn Array) -> Option<Box<dyn Array>> {
    let list = array.as_any().downcast_ref::<ListArray<i64>>()?;
    let values = list.values().as_any().downcast_ref::<Utf8ViewArray>()?;
    let mut codes: PlHashMap<&str, u32> = PlHashMap::default();
    let mut distinct = MutableBinaryViewArray::<str>::new();
    let mut keys: Vec<u32> = Vec::with_capacity(values.len());
    let valid = |i: usize| values.validity().is_none_or(|v| v.get_bit(i));
    for (i, v) in values.values_iter().enumerate() {
        // A null name keeps its slot (code 0, masked by the validity below) and adds no
        // value: the dictionary's values are the page statistics' min and max.
        if !valid(i) {
            keys.push(0);
            continue;
        }
        let next = codes.len() as u32;
        let code = *codes.entry(v).or_insert_with(|| {
            distinct.push_value(v);
            next
        });
        keys.push(code);
    }
    let keys = PrimitiveArray::<u32>::new(
        ArrowDataType::UInt32,
        keys.into(),
        values.validity().cloned(),
    );
    let values_dtype = values.dtype().clone();
    let dict_dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(values_dtype), false);
    let distinct: Utf8ViewArray = distinct.into();
    let dict = DictionaryArray::try_new(dict_dtype.clone(), keys, distinct.boxed()).ok()?;
    let ArrowDataType::LargeList(item) = list.dtype() else {
        return None;
    };
    let item = item.as_ref().clone().with_dtype(dict_dtype);
    let out = ListArray::<i64>::try_new(
        ArrowDataType::LargeList(Box::new(item)),
        list.offsets().clone(),
        dict.boxed(),
        list.validity().cloned(),
    )
    .ok()?;
    Some(out.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    fn round_trip(df: &mut DataFrame) -> (DataFrame, usize) {
        let mut buf = Vec::new();
        write_parquet(df, &mut buf).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(buf.clone()))
            .finish()
            .unwrap();
        (back, buf.len())
    }

    fn names(rows: &[Option<Vec<Option<&str>>>]) -> Series {
        let mut b = ListStringChunkedBuilder::new("names".into(), rows.len(), 8);
        for r in rows {
            match r {
                Some(v) => b.append_values_iter(v.iter().map(|x| x.unwrap_or(""))),
                None => b.append_null(),
            }
        }
        b.finish().into_series()
    }

    #[test]
    fn lists_of_strings_read_back_equal_with_nulls_and_empty_lists() {
        let mut df = df!(
            "id" => [1i64, 2, 3, 4],
            "label" => [Some("a"), None, Some("c"), Some("d")],
        )
        .unwrap();
        let list = names(&[
            Some(vec![Some("bolt"), Some("nut"), Some("bolt")]),
            None,
            Some(vec![]),
            Some(vec![Some("washer"), Some("")]),
        ]);
        df.with_column(list.into_column()).unwrap();
        // A list holding a NULL name: built by casting, since the builder above has none.
        let with_null = df
            .clone()
            .lazy()
            .with_column(
                when(col("id").eq(lit(3)))
                    .then(lit(Series::new("x".into(), [None::<&str>, Some("z")])).implode(true))
                    .otherwise(col("names"))
                    .alias("names"),
            )
            .collect()
            .unwrap();
        for mut frame in [df, with_null] {
            let (back, _) = round_trip(&mut frame);
            assert!(back.equals_missing(&frame), "{back}\n{frame}");
            assert_eq!(back.schema(), frame.schema());
        }
    }

    #[test]
    fn repeated_names_are_stored_once() {
        // 20,000 rows of the same 100 names: plain pages would hold 2 M names.
        let pool: Vec<String> = (0..100).map(|i| format!("product name {i:03}")).collect();
        let rows: Vec<Option<Vec<Option<&str>>>> = (0..20_000)
            .map(|_| Some(pool.iter().map(|s| Some(s.as_str())).collect()))
            .collect();
        let mut df = DataFrame::new(20_000, vec![names(&rows).into_column()]).unwrap();
        let (back, size) = round_trip(&mut df);
        assert!(back.equals_missing(&df));
        let mut plain = Vec::new();
        ParquetWriter::new(&mut plain)
            .with_compression(ParquetCompression::Uncompressed)
            .finish(&mut df)
            .unwrap();
        assert!(size * 4 < plain.len(), "{size} vs {}", plain.len());
    }

    #[test]
    fn frames_without_string_lists_and_several_row_groups_read_back_equal() {
        let n = ROW_GROUP_ROWS + 5;
        let ids: Vec<i64> = (0..n as i64).collect();
        let mut df = df!("id" => ids.clone()).unwrap();
        let (back, _) = round_trip(&mut df);
        assert!(back.equals_missing(&df));
        let rows: Vec<Option<Vec<Option<&str>>>> = (0..n)
            .map(|i| Some(vec![Some(["a", "b"][i % 2])]))
            .collect();
        df.with_column(names(&rows).into_column()).unwrap();
        let (back, _) = round_trip(&mut df);
        assert!(back.equals_missing(&df));
    }
}
