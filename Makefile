.PHONY: demo test bench bench-swift
demo:  ; bash scripts/demo.sh
test:  ; bash scripts/test.sh
bench: ; swift build -c release --product callrec && bench/compare.sh
bench-swift: ; swift package --package-path bench --disable-sandbox benchmark
