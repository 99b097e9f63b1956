.PHONY: demo test lint format bench bench-swift
demo:  ; bash scripts/demo.sh
test:  ; bash scripts/test.sh
lint:  ; bash scripts/lint.sh
format: ; bash scripts/lint.sh --fix
bench: ; swift build -c release --product callrec && bench/compare.sh
bench-swift: ; swift package --package-path bench --disable-sandbox benchmark
