.PHONY: demo test bench
demo:  ; bash scripts/demo.sh
test:  ; bash scripts/test.sh
bench: ; swift build -c release --product callrec && bench/compare.sh
