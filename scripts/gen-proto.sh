#!/usr/bin/env bash
# Generates the typed protocol code (libs/shared/src/proto/generated) from proto/ with ts-proto.
# The generated files are never edited by hand.
#   scripts/gen-proto.sh          regenerate
#   scripts/gen-proto.sh --check  fail when the committed files differ from what proto/ generates
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=libs/shared/src/proto/generated
PLUGIN=node_modules/.bin/protoc-gen-ts_proto
command -v protoc >/dev/null || { echo "protoc is missing: apt-get install -y protobuf-compiler" >&2; exit 1; }
[ -x "$PLUGIN" ] || { echo "ts-proto is missing: run npm ci" >&2; exit 1; }

OPTS="outputServices=grpc-js,env=node,esModuleInterop=true,snakeToCamel=false,forceLong=number,outputJsonMethods=false,outputPartialMethods=true,useExactTypes=false,annotateFilesWithVersion=false"

generate() {
  mkdir -p "$1"
  protoc --plugin="protoc-gen-ts_proto=$PLUGIN" --ts_proto_out="$1" --ts_proto_opt="$OPTS" -I proto proto/*.proto
}

if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  generate "$tmp"
  if ! diff -ru "$OUT" "$tmp" >/dev/null; then
    diff -ru "$OUT" "$tmp" | head -n 40 >&2
    echo "generated protocol code is out of date with proto/: run npm run proto and commit the result" >&2
    exit 1
  fi
  echo "generated protocol code matches proto/"
else
  rm -rf "$OUT"; generate "$OUT"; echo "generated $OUT from proto/"
fi
