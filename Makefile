.PHONY: demo test lint format bench bench-swift fuzz
demo:  ; bash scripts/demo.sh
test:  ; bash scripts/test.sh
lint:  ; bash scripts/lint.sh
format: ; bash scripts/lint.sh --fix
# the one build configuration, scripts/setup.sh's callrec_build (as demo.sh and test.sh)
bench: ; bash -c 'source scripts/setup.sh && swift build "$${callrec_build[@]}" --product callrec && swift build "$${callrec_build[@]}" --product callrec-bench' && bench/compare.sh
bench-swift: ; swift package --package-path bench --disable-sandbox benchmark
# libFuzzer over every parser of untrusted bytes, 60 s each (scripts/fuzz.sh SECONDS NAME... for more)
fuzz: ; bash scripts/fuzz.sh
