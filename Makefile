.PHONY: demo test bench bench-swift
demo:  ; bash scripts/demo.sh
test:  ; bash scripts/test.sh
bench: ; swift build -c release -Xswiftc -enable-testing --product callrec && swift build -c release -Xswiftc -enable-testing --product callrec-bench && bench/compare.sh
bench-swift: ; swift package --package-path bench --disable-sandbox benchmark
