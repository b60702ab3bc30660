# qnnc: `make demo` runs the main job end to end; `make test` runs every test.
# Both install what is missing first (Debian packages; needs root or sudo).

CARGO ?= cargo
QNNC := target/release/qnnc
FMNIST_DIR := /usr/share/datasets/fashion-mnist
DEMO_DIR := build/demo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all setup build demo test bench lint clean

all: build

# Installs only what is missing: the data set, and the simulators and synthesis tool that
# the hardware stages use.
setup:
	@missing=""; \
	[ -f $(FMNIST_DIR)/t10k-images-idx3-ubyte.gz ] || missing="$$missing dataset-fashion-mnist"; \
	command -v verilator >/dev/null 2>&1 || missing="$$missing verilator"; \
	command -v yosys >/dev/null 2>&1 || missing="$$missing yosys"; \
	command -v iverilog >/dev/null 2>&1 || missing="$$missing iverilog"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

build:
	$(CARGO) build --release --locked

# Train the example MLP on Fashion-MNIST at 4 bits, then reload the model file and evaluate it.
demo: setup build
	@mkdir -p $(DEMO_DIR)
	$(QNNC) train examples/fmnist_mlp.toml --bits 4 --epochs 5 --seed 1 -o $(DEMO_DIR)/mlp4.qnn
	$(QNNC) eval $(DEMO_DIR)/mlp4.qnn

test: setup
	$(CARGO) test --release --locked

bench: setup build
	$(QNNC) bench train
	$(QNNC) bench golden

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets --locked -- -D warnings

clean:
	$(CARGO) clean
	rm -rf build
