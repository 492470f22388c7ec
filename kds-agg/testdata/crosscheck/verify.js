#!/usr/bin/env node
/*
 * "Theirs decode ours": deaggregate <case>.bin files with the npm package
 * aws-kinesis-agg and compare against <case>.json.
 *
 * Usage:
 *     NODE_PATH=/tmp/aggnode/node_modules node verify.js [DIR]     # default DIR: ../ours next to this script
 *     NODE_PATH=/tmp/aggnode/node_modules node verify.js --self-test  # DIR = node/ (the library's own vectors)
 *     (add -v for per-file output)
 *
 * Install (once, outside the repo; works offline afterwards):
 *     mkdir -p /tmp/aggnode && cd /tmp/aggnode && npm init -y && npm install aws-kinesis-agg@4.2.8
 *
 * DIR holds <case>.bin + <case>.json pairs (format: see README.md). Each .bin is
 * passed (base64, as a Lambda-style {data, partitionKey, sequenceNumber}
 * record) to deaggregateSync(record, computeChecksums=true, cb). Checked, per
 * file: no error from the library (MD5 verified, protobuf decoded), the number
 * of user records, and for each record in order: partition key, data,
 * sub-sequence number, and the explicit hash key where the expected one is
 * non-null. Where null is expected but the library reports one, that is
 * printed as a note (known library quirk: explicit_hash_key_table[0] is
 * returned for records without an explicit_hash_key_index) and does not fail.
 *
 * A .bin that does not start with the KPL magic is treated as a deliberately
 * non-aggregated single record: its JSON must list exactly one record and the
 * library must pass it through unchanged.
 *
 * --self-test additionally corrupts the MD5 of one vector and checks that the
 * library then reports a checksum error.
 *
 * Exit status: 0 on success, 1 on any mismatch, 2 on usage/setup errors.
 */
'use strict';
const fs = require('fs');
const path = require('path');

const PROG = 'verify.js';
let agg;
try {
  agg = require('aws-kinesis-agg');
} catch (e) {
  console.error(PROG + ': cannot load aws-kinesis-agg (' + e.message + ').\n' +
    'Install it (npm install aws-kinesis-agg@4.2.8 in e.g. /tmp/aggnode) and run with ' +
    'NODE_PATH=/tmp/aggnode/node_modules');
  process.exit(2);
}

const MAGIC = Buffer.from('f3899ac2', 'hex');

class Mismatch extends Error {}

function deaggregate(data, aggPk) {
  const record = {
    data: data.toString('base64'),
    partitionKey: aggPk === null || aggPk === undefined ? 'agg-pk' : aggPk,
    sequenceNumber: '49590338271490256608559692538361571095921575989136588898',
  };
  const errors = [];
  let records = null;
  let calls = 0;
  agg.deaggregateSync(record, true, (err, recs) => {
    calls++;
    if (err) errors.push(err);
    if (recs !== undefined && records === null) records = recs;
  });
  // deaggregateSync is synchronous in this library version
  if (calls === 0) throw new Mismatch('deaggregateSync did not call back synchronously');
  return { records: records || [], errors };
}

function checkFile(binPath, jsonPath, notes) {
  const data = fs.readFileSync(binPath);
  const meta = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const expected = meta.records;
  if (!Array.isArray(expected)) throw new Mismatch(path.basename(jsonPath) + ': no "records" array');
  const name = path.basename(binPath);
  const { records: out, errors } = deaggregate(data, meta.aggregate_partition_key);

  if (!data.subarray(0, 4).equals(MAGIC)) {
    if (expected.length !== 1) {
      throw new Mismatch(name + ': no KPL magic but JSON lists ' + expected.length + ' records');
    }
    if (errors.length || out.length !== 1 || out[0].subSequenceNumber !== undefined) {
      throw new Mismatch(name + ': expected pass-through of a non-aggregated record');
    }
    if (!Buffer.from(out[0].data, 'base64').equals(Buffer.from(expected[0].data_hex, 'hex'))) {
      throw new Mismatch(name + ': pass-through data differs from JSON record data');
    }
    notes.push(name + ': not aggregated (no magic), passed through as a plain record');
    return 1;
  }

  if (errors.length) {
    throw new Mismatch(name + ': library error: ' + errors.map((e) => e && e.message ? e.message : String(e)).join('; '));
  }
  if (out.length !== expected.length) {
    throw new Mismatch(name + ': library returned ' + out.length + ' user records, JSON expects ' + expected.length);
  }
  for (let i = 0; i < out.length; i++) {
    const got = out[i];
    const exp = expected[i];
    const where = name + ' record ' + i;
    if (got.subSequenceNumber !== i) throw new Mismatch(where + ': subSequenceNumber ' + got.subSequenceNumber);
    if (got.partitionKey !== exp.partition_key) {
      throw new Mismatch(where + ': partition key ' + JSON.stringify(got.partitionKey) +
        ', expected ' + JSON.stringify(exp.partition_key));
    }
    const gotData = Buffer.from(got.data, 'base64');
    const expData = Buffer.from(exp.data_hex, 'hex');
    if (!gotData.equals(expData)) {
      throw new Mismatch(where + ': data differs (got ' + gotData.length + ' bytes ' +
        gotData.subarray(0, 16).toString('hex') + '..., expected ' + expData.length + ' bytes ' +
        expData.subarray(0, 16).toString('hex') + '...)');
    }
    const expEhk = exp.explicit_hash_key === undefined ? null : exp.explicit_hash_key;
    const gotEhk = got.explicitPartitionKey === undefined ? null : got.explicitPartitionKey;
    if (expEhk !== null) {
      if (gotEhk !== expEhk) {
        throw new Mismatch(where + ': explicit hash key ' + JSON.stringify(gotEhk) +
          ', expected ' + JSON.stringify(expEhk));
      }
    } else if (gotEhk !== null) {
      notes.push(where + ': no EHK expected, library reports ' + JSON.stringify(gotEhk) + ' (table[0] quirk)');
    }
  }
  return out.length;
}

function pairs(dir) {
  const files = fs.readdirSync(dir);
  const bins = new Set(files.filter((f) => f.endsWith('.bin')).map((f) => f.slice(0, -4)));
  const jsons = new Set(files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)));
  const problems = [];
  for (const j of [...jsons].sort()) if (!bins.has(j)) problems.push(j + '.json without .bin');
  for (const b of [...bins].sort()) if (!jsons.has(b)) problems.push(b + '.bin without .json');
  const both = [...bins].filter((b) => jsons.has(b)).sort();
  return { pairs: both.map((b) => [path.join(dir, b + '.bin'), path.join(dir, b + '.json')]), problems };
}

function tamperCheck(dir) {
  const { pairs: ps } = pairs(dir);
  if (!ps.length) throw new Mismatch('tamper check: no vectors');
  const data = Buffer.from(fs.readFileSync(ps[0][0]));
  data[data.length - 1] ^= 0x01;
  const { errors } = deaggregate(data, 'x');
  if (!errors.length) throw new Mismatch('tamper check: library accepted ' + path.basename(ps[0][0]) + ' with a corrupted MD5');
  return path.basename(ps[0][0]) + ' (' + errors[0].message + ')';
}

function main() {
  const argv = process.argv.slice(2);
  let selfTest = false;
  let verbose = false;
  const positional = [];
  for (const a of argv) {
    if (a === '--self-test') selfTest = true;
    else if (a === '-v' || a === '--verbose') verbose = true;
    else if (a === '-h' || a === '--help') {
      console.log('usage: node verify.js [-v] [DIR | --self-test]   (DIR defaults to ../ours)');
      return 0;
    } else if (a.startsWith('-')) {
      console.error(PROG + ': unknown option ' + a);
      return 2;
    } else positional.push(a);
  }
  if (positional.length > 1 || (selfTest && positional.length)) {
    console.error('usage: node verify.js [-v] [DIR | --self-test]');
    return 2;
  }
  const dir = selfTest ? path.join(__dirname, 'node')
    : (positional[0] || path.normalize(path.join(__dirname, '..', 'ours')));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    console.error(PROG + ': directory not found: ' + dir);
    return 2;
  }
  const { pairs: ps, problems } = pairs(dir);
  if (problems.length) {
    for (const p of problems) console.error(PROG + ': FAIL: ' + p);
    return 1;
  }
  if (!ps.length) {
    console.error(PROG + ': no <case>.bin/<case>.json pairs in ' + dir);
    return 1;
  }
  const notes = [];
  const failures = [];
  let total = 0;
  for (const [b, j] of ps) {
    try {
      const n = checkFile(b, j, notes);
      total += n;
      if (verbose) console.log('  ' + path.basename(b).padEnd(24) + String(n).padStart(6) + ' records ok');
    } catch (e) {
      if (e instanceof Mismatch) failures.push(e.message);
      else failures.push(path.basename(j) + ': malformed JSON/vector: ' + e.message);
    }
  }
  if (selfTest && !failures.length) {
    try {
      notes.push('tamper check: corrupted MD5 of ' + tamperCheck(dir) + ' was rejected');
    } catch (e) {
      failures.push(e.message);
    }
  }
  const quirk = notes.filter((n) => n.includes('table[0] quirk'));
  for (const n of notes) if (verbose || !n.includes('table[0] quirk')) console.log(PROG + ': note: ' + n);
  if (quirk.length && !verbose) {
    console.log(PROG + ': note: ' + quirk.length + ' record(s) without an expected EHK got one from the library ' +
      '(table[0] quirk), e.g. ' + quirk[0]);
  }
  if (failures.length) {
    for (const f of failures) console.error(PROG + ': FAIL: ' + f);
    console.error(PROG + ': ' + ps.length + ' files, ' + failures.length + ' failed (' + dir + ')');
    return 1;
  }
  console.log(PROG + ': ' + ps.length + ' files, ' + total + ' records: ok');
  return 0;
}

process.exitCode = main();
