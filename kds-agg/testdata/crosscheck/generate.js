#!/usr/bin/env node
/*
 * Generate "ours decode theirs" vectors with the npm package aws-kinesis-agg.
 *
 * Writes <case>.bin (the exact aggregated Kinesis record data produced by the
 * library's RecordAggregator.build()) and <case>.json (producer, aggregate-level
 * partition / explicit hash key, and the user records handed to the aggregator)
 * into node/ next to this script. Deterministic: no randomness, re-running
 * reproduces the same bytes. Existing node/*.bin / node/*.json are replaced.
 *
 * How to run (outside the repo, once):
 *     mkdir -p /tmp/aggnode && cd /tmp/aggnode && npm init -y && npm install aws-kinesis-agg@4.2.8
 * then:
 *     NODE_PATH=/tmp/aggnode/node_modules node kds-agg/testdata/crosscheck/generate.js
 *
 * The inputs of every case are identical to those in generate.py (keep the two
 * in sync).
 */
'use strict';
const fs = require('fs');
const path = require('path');

let agg, aggPkg;
try {
  agg = require('aws-kinesis-agg');
  aggPkg = require('aws-kinesis-agg/package.json');
} catch (e) {
  console.error('generate.js: cannot load aws-kinesis-agg (' + e.message + ').\n' +
    'Install it (npm install aws-kinesis-agg@4.2.8 in e.g. /tmp/aggnode) and run with ' +
    'NODE_PATH=/tmp/aggnode/node_modules');
  process.exit(2);
}

const OUT_DIR = path.join(__dirname, 'node');
const PRODUCER = 'aws-kinesis-agg (npm) ' + aggPkg.version;

const U128_MAX = '340282366920938463463374607431768211455';
const U127 = '170141183460469231731687303715884105728'; // 2**127

function pattern(n, seed) {
  const b = Buffer.alloc(n);
  for (let j = 0; j < n; j++) b[j] = (seed * 73 + j * 29 + (j >> 3)) & 0xff;
  return b;
}

function cases() {
  // {case: [[partitionKey, dataBuffer, explicitHashKey or null], ...]}
  const c = {};
  c['golden'] = [
    ['pk-a', Buffer.from('hello'), null],
    ['pk-b', Buffer.from('world'), '42'],
    ['pk-a', Buffer.from('!'), null],
  ];
  c['single'] = [['only-key', Buffer.from('just one user record'), null]];

  const lengths = [0, 1, 2, 5, 16, 31, 64, 100, 127, 128,
    129, 150, 200, 255, 256, 257, 280, 299, 300, 3];
  const keys = ['bin-a', 'bin-b', 'bin-c'];
  c['binary'] = lengths.map((n, i) => [keys[i % 3], pattern(n, i), null]);

  let longKey = '';
  for (let j = 0; j < 256; j++) longKey += String.fromCharCode(97 + (j % 26));
  const ukeys = ['clé-é', '键', '🙂-key', longKey, 'Ωμέγα ключ', 'e\u0301-combining'];
  c['unicode-keys'] = [];
  for (let i = 0; i < 9; i++) {
    const k = ukeys[i % ukeys.length];
    c['unicode-keys'].push([k, Buffer.from('data ' + i + ' for ' + k, 'utf8'), null]);
  }

  c['many'] = [];
  for (let i = 0; i < 2000; i++) {
    const d = Buffer.alloc(4);
    d.writeUInt32BE(i);
    c['many'].push(['key-' + String(i % 300).padStart(3, '0'), Buffer.concat([d, pattern(6, i)]), null]);
  }

  // Integer-like explicit hash keys ("0", "42") first appear ascending and
  // before the big ones on purpose: the library builds its tables with
  // Object.keys(), which hoists array-index-like keys to the front in numeric
  // order and would otherwise corrupt the indexes (see README).
  c['ehk-mixed'] = [
    ['m-a', Buffer.from('no ehk first'), null],
    ['m-b', Buffer.from('ehk zero'), '0'],
    ['m-a', Buffer.from('ehk 42'), '42'],
    ['m-c', Buffer.from('no ehk'), null],
    ['m-b', Buffer.from('ehk u128 max'), U128_MAX],
    ['m-c', Buffer.from('ehk 2^127'), U127],
    ['m-a', Buffer.from('ehk zero again'), '0'],
    ['m-d', Buffer.from('no ehk last-but-one'), null],
    ['m-d', Buffer.from('ehk u128 max again'), U128_MAX],
  ];
  return c;
}

// Feed records to one RecordAggregator; build() whenever the next record does
// not fit (addUserRecord throws instead of flushing). Returns [{encoded, recs}].
function aggregate(records) {
  const ra = new agg.RecordAggregator();
  const out = [];
  let pending = [];
  for (const [pk, data, ehk] of records) {
    const rec = { partitionKey: pk, data: data };
    if (ehk !== null) rec.explicitHashKey = ehk;
    if (ra.length() > 0 && !ra.checkIfUserRecordFits(rec)) {
      out.push({ encoded: ra.build(), recs: pending });
      pending = [];
    }
    ra.addUserRecord(rec);
    pending.push([pk, data, ehk]);
  }
  if (ra.length() > 0) out.push({ encoded: ra.build(), recs: pending });
  return out;
}

function dumpJson(meta) {
  const j = (v) => JSON.stringify(v);
  const head = Object.keys(meta).filter((k) => k !== 'records')
    .map((k) => ' ' + j(k) + ':' + j(meta[k])).join(',\n');
  const recs = meta.records.map((r) => '  ' + j(r)).join(',\n');
  return '{\n' + head + ',\n "records":[\n' + recs + '\n ]\n}\n';
}

function main() {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  for (const f of fs.readdirSync(OUT_DIR)) {
    if (f.endsWith('.bin') || f.endsWith('.json')) fs.unlinkSync(path.join(OUT_DIR, f));
  }
  const all = cases();
  for (const name of Object.keys(all)) {
    const aggs = aggregate(all[name]);
    aggs.forEach(({ encoded, recs }, idx) => {
      const base = aggs.length === 1 ? name : name + '-' + idx;
      // build() returns {partitionKey, data[, ExplicitHashKey]} (note the capital E)
      const aggEhk = encoded.ExplicitHashKey !== undefined ? encoded.ExplicitHashKey
        : (encoded.explicitHashKey !== undefined ? encoded.explicitHashKey : null);
      const meta = {
        producer: PRODUCER,
        aggregate_partition_key: encoded.partitionKey === undefined ? null : encoded.partitionKey,
        aggregate_explicit_hash_key: aggEhk,
        records: recs.map(([pk, data, ehk]) => ({
          partition_key: pk, explicit_hash_key: ehk, data_hex: data.toString('hex'),
        })),
      };
      fs.writeFileSync(path.join(OUT_DIR, base + '.bin'), encoded.data);
      fs.writeFileSync(path.join(OUT_DIR, base + '.json'), dumpJson(meta));
      const shownPk = meta.aggregate_partition_key.length < 40 ? meta.aggregate_partition_key
        : meta.aggregate_partition_key.slice(0, 37) + '...';
      console.log(base.padEnd(16) + String(recs.length).padStart(6) + ' records ' +
        String(encoded.data.length).padStart(7) + ' bytes  agg pk=' + JSON.stringify(shownPk) +
        ' ehk=' + JSON.stringify(aggEhk));
    });
  }
}

main();
