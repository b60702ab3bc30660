use super::*;

fn toml_spec(body: &str) -> Result<Spec, SpecError> {
    Spec::parse(body, false, "net.toml")
}

const HEADER: &str = r#"
name = "t"
input = { height = 28, width = 28, channels = 1 }
classes = 10
"#;

fn build(body: &str) -> Result<Network, SpecError> {
    toml_spec(&format!("{HEADER}{body}"))?.build("net.toml")
}

#[test]
fn the_examples_build() {
    for (file, layers) in [
        ("examples/fmnist_mlp.toml", 9),
        ("examples/fmnist_cnn.toml", 3 * 4 + 1 + 2),
        ("examples/cifar10_vgg.toml", 3 * 7 + 1 + 3 + 2),
        ("examples/fmnist_layers.json", 10),
        // Stem and pool, two stages (conv and block, 3 + 8), pool between, head of 5.
        ("examples/fmnist_resnet.toml", 4 + 11 + 1 + 11 + 5),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let network = Spec::from_file(&path).unwrap().build(file).unwrap();
        assert_eq!(network.layers.len(), layers, "{file}");
    }
}

#[test]
fn the_block_template_expands_as_in_the_paper() {
    let network = build(
        r#"
[template]
kind = "blocks"
blocks = [{ nl = 2, nf = 8 }, { nl = 1, nf = 16 }, { nl = 1, nf = 32 }]
"#,
    )
    .unwrap();
    let kinds: Vec<&str> = network.layers.iter().map(|l| l.op.kind()).collect();
    assert_eq!(
        kinds,
        [
            "conv2d",
            "batchnorm",
            "act",
            "conv2d",
            "batchnorm",
            "act",
            "maxpool", //
            "conv2d",
            "batchnorm",
            "act",
            "maxpool", //
            "conv2d",
            "batchnorm",
            "act",
            "maxpool", //
            "flatten",
            "dense",
            "batchnorm"
        ]
    );
    let pool_outputs: Vec<Shape> = network
        .layers
        .iter()
        .filter(|l| l.op.kind() == "maxpool")
        .map(|l| l.output)
        .collect();
    assert_eq!(
        pool_outputs[0],
        Shape {
            height: 14,
            width: 14,
            channels: 8
        }
    );
    assert_eq!(
        pool_outputs[2],
        Shape {
            height: 3,
            width: 3,
            channels: 32
        }
    );
    assert_eq!(network.layers.last().unwrap().output, Shape::flat(10));
    assert_eq!(network.layers[0].name, "conv1");
    assert_eq!(network.layers[3].name, "conv2");
}

#[test]
fn overrides_scale_the_template_and_set_precisions() {
    let mut spec = toml_spec(&format!(
        "{HEADER}[template]\nkind = \"blocks\"\nblocks = [{{ nl = 1, nf = 32 }}, {{ nl = 1, nf = 32 }}, {{ nl = 1, nf = 32 }}]\n"
    ))
    .unwrap();
    spec.apply(
        &Overrides {
            bits: Some(Precision::Bits(2)),
            abits: Some(Precision::Bits(3)),
            nl: Some(vec![2]),
            nf: Some(vec![8, 16, 64]),
            ..Overrides::default()
        },
        "net.toml",
    )
    .unwrap();
    let network = spec.build("net.toml").unwrap();
    let convs: Vec<&LayerPlan> = network
        .layers
        .iter()
        .filter(|l| l.op.kind() == "conv2d")
        .collect();
    assert_eq!(convs.len(), 6);
    assert_eq!(
        convs.iter().map(|c| c.output.channels).collect::<Vec<_>>(),
        [8, 8, 16, 16, 64, 64]
    );
    assert_eq!(convs[0].op.weight_precision(), Some(Precision::Bits(2)));
    assert!(network
        .layers
        .iter()
        .all(|l| !matches!(l.op, Op::Act { bits } if bits != Precision::Bits(3))));
    let err = spec
        .apply(
            &Overrides {
                nf: Some(vec![1, 2]),
                ..Overrides::default()
            },
            "net.toml",
        )
        .unwrap_err();
    assert!(
        matches!(&err, SpecError::Flag { flag, .. } if flag == "--nf"),
        "{err:?}"
    );
}

#[test]
fn per_layer_precision_overrides_win_over_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fmnist_layers.json");
    let network = Spec::from_file(&path).unwrap().build("x").unwrap();
    assert_eq!(network.layers[0].name, "conv_in");
    assert_eq!(
        network.layers[0].op.weight_precision(),
        Some(Precision::Bits(8))
    );
    assert_eq!(
        network.layers[4].op.weight_precision(),
        Some(Precision::Bits(2))
    );
    assert_eq!(
        network.layers[6].op,
        Op::Act {
            bits: Precision::Bits(4)
        }
    );
    assert_eq!(
        network.layers[2].op,
        Op::Act {
            bits: Precision::Bits(2)
        }
    );
}

fn error_of(body: &str) -> SpecError {
    build(body).expect_err("spec must be refused")
}

#[test]
fn unknown_layer_kind_names_the_field() {
    let e =
        error_of("[[layers]]\nkind = \"flatten\"\n[[layers]]\nkind = \"conv3d\"\nfilters = 3\n");
    assert_eq!(e.file(), "net.toml");
    assert!(e.field().starts_with("layers[1]"), "{e}");
    assert!(e.to_string().contains("conv3d"), "{e}");
}

#[test]
fn bit_widths_out_of_range_are_refused() {
    for bits in ["0", "17", "33", "-1"] {
        let e = error_of(&format!(
            "[precision]\nweights = {bits}\nactivations = 4\n[template]\nkind = \"mlp\"\nhidden = [8]\n"
        ));
        assert!(matches!(e, SpecError::Precision { .. }), "{e:?}");
        assert_eq!(e.field(), "precision.weights", "{e}");
        assert!(e.to_string().contains("out of range 1..=16"), "{e}");
    }
    let e = error_of(
        "[[layers]]\nkind = \"flatten\"\n[[layers]]\nkind = \"dense\"\nunits = 10\nwbits = 0\n",
    );
    assert!(e.to_string().contains("out of range"), "{e}");
}

#[test]
fn zero_and_negative_sizes_are_refused() {
    let e = error_of("[template]\nkind = \"blocks\"\nblocks = [{ nl = 1, nf = 0 }]\n");
    assert!(matches!(e, SpecError::Value { .. }), "{e:?}");
    assert_eq!(e.field(), "template.blocks[0].nf");
    let e = error_of("[template]\nkind = \"mlp\"\nhidden = [0]\n");
    assert_eq!(e.field(), "template.hidden[0]");
    let e = error_of("[[layers]]\nkind = \"conv2d\"\nfilters = -3\nkernel = 3\n");
    assert!(e.field().starts_with("layers[0]"), "{e}");
    let e = error_of("[[layers]]\nkind = \"conv2d\"\nfilters = 0\nkernel = 3\n");
    assert!(e.to_string().contains("filters must be at least 1"), "{e}");
    let e = toml_spec("name = \"t\"\ninput = { height = 0, width = 28, channels = 1 }\nclasses = 10\n[template]\nkind = \"mlp\"\nhidden = []\n")
        .unwrap()
        .build("net.toml")
        .unwrap_err();
    assert_eq!(e.field(), "input.height");
}

#[test]
fn shapes_that_do_not_fit_are_refused() {
    let e = error_of(
        "[[layers]]\nkind = \"maxpool\"\nsize = 2\n[[layers]]\nkind = \"maxpool\"\nsize = 2\n[[layers]]\nkind = \"maxpool\"\nsize = 2\n[[layers]]\nkind = \"maxpool\"\nsize = 2\n[[layers]]\nkind = \"conv2d\"\nfilters = 4\nkernel = 3\n",
    );
    assert!(matches!(e, SpecError::Shape { .. }), "{e:?}");
    assert_eq!(e.field(), "layers[4] (conv1)");
    assert!(e.to_string().contains("does not fit"), "{e}");
    let e = error_of("[[layers]]\nkind = \"dense\"\nunits = 10\n");
    assert!(e.to_string().contains("flatten"), "{e}");
    let e = error_of("[[layers]]\nkind = \"flatten\"\n[[layers]]\nkind = \"dense\"\nunits = 12\n");
    assert!(e.to_string().contains("must end in 1x1x10"), "{e}");
}

#[test]
fn names_that_could_inject_code_are_refused() {
    let e = error_of("[[layers]]\nkind = \"flatten\"\nname = \"x; $finish\"\n[[layers]]\nkind = \"dense\"\nunits = 10\n");
    assert_eq!(e.field(), "layers[0].name");
    let e = error_of("[[layers]]\nkind = \"flatten\"\nname = \"a\"\n[[layers]]\nkind = \"dense\"\nunits = 10\nname = \"a\"\n");
    assert!(e.to_string().contains("used twice"), "{e}");
}

#[test]
fn syntax_errors_and_unknown_fields_are_one_line() {
    let e = toml_spec("name = \"t\"\ninput = {\n").unwrap_err();
    assert!(matches!(e, SpecError::Syntax { .. }), "{e:?}");
    assert!(e.message().starts_with("line "), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
    let e = toml_spec(&format!("{HEADER}colour = 3\n")).unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
    let e = Spec::parse("{\"name\": 3}", true, "net.json").unwrap_err();
    assert_eq!(e.field(), "name");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn training_memory_is_estimated_without_overflow() {
    let network = build("[template]\nkind = \"mlp\"\nhidden = [256]\n").unwrap();
    let bytes = network.training_bytes(100).unwrap();
    assert!(bytes > 4 * 4 * 784 * 256 && bytes < 64 << 20, "{bytes}");
    assert_eq!(network.training_bytes(usize::MAX), None);
}

/// A residual block between an act named `in` and a global average pool, with `{main}` the
/// layers between `in` and the add, `{from}` the add's source and `{after}` what follows it.
fn residual(main: &str, from: &str, after: &str) -> String {
    format!(
        "[[layers]]\nkind = \"conv2d\"\nname = \"c1\"\nfilters = 4\nkernel = 3\npadding = 1\n\
         [[layers]]\nkind = \"batchnorm\"\n\
         [[layers]]\nkind = \"act\"\nname = \"in\"\n\
         {main}\
         [[layers]]\nkind = \"add\"\nname = \"skip\"\nfrom = \"{from}\"\n\
         {after}\
         [[layers]]\nkind = \"flatten\"\n[[layers]]\nkind = \"dense\"\nunits = 10\n"
    )
}

const BLOCK: &str = "[[layers]]\nkind = \"conv2d\"\nfilters = 4\nkernel = 3\npadding = 1\n\
                     [[layers]]\nkind = \"batchnorm\"\n[[layers]]\nkind = \"act\"\n";
const ACT_AND_GLOBAL_POOL: &str = "[[layers]]\nkind = \"act\"\nname = \"after\"\n\
                                   [[layers]]\nkind = \"avgpool\"\n[[layers]]\nkind = \"act\"\n";

/// The error names the file and the field, on one line.
fn assert_refused(e: &SpecError, field: &str, needle: &str) {
    assert_eq!(e.file(), "net.toml", "{e}");
    assert_eq!(e.field(), field, "{e}");
    assert!(e.to_string().contains(needle), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
}

#[test]
fn a_residual_block_and_global_average_pooling_build() {
    let network = build(&residual(BLOCK, "in", ACT_AND_GLOBAL_POOL)).unwrap();
    let add = &network.layers[6];
    assert_eq!(add.name, "skip");
    assert_eq!(add.op, Op::Add { from: 2 });
    assert_eq!(add.output, add.input);
    let pool = &network.layers[8];
    assert_eq!(
        pool.op,
        Op::AvgPool {
            size: 28,
            stride: 28
        }
    );
    assert_eq!(pool.output, Shape::flat(4));
    // A sized pool strides by its size unless told.
    let network = build(&residual(
        BLOCK,
        "in",
        "[[layers]]\nkind = \"act\"\n[[layers]]\nkind = \"avgpool\"\nsize = 2\n[[layers]]\nkind = \"act\"\n",
    ))
    .unwrap();
    assert_eq!(network.layers[8].op, Op::AvgPool { size: 2, stride: 2 });
    assert_eq!(
        network.layers[8].output,
        Shape {
            height: 14,
            width: 14,
            channels: 4
        }
    );
}

#[test]
fn an_add_from_an_unknown_layer_is_refused() {
    let e = error_of(&residual(BLOCK, "nowhere", ACT_AND_GLOBAL_POOL));
    assert!(
        matches!(&e, SpecError::UnknownLayer { field, name, .. } if field == "layers[6].from" && name == "nowhere"),
        "{e:?}"
    );
    assert_refused(
        &e,
        "layers[6].from",
        "'nowhere' is not the name of an earlier layer",
    );
}

#[test]
fn an_add_from_a_later_layer_or_itself_is_refused() {
    let e = error_of(&residual(BLOCK, "after", ACT_AND_GLOBAL_POOL));
    assert!(matches!(e, SpecError::UnknownLayer { .. }), "{e:?}");
    assert_refused(
        &e,
        "layers[6].from",
        "'after' is not the name of an earlier layer",
    );
    let e = error_of(&residual(BLOCK, "skip", ACT_AND_GLOBAL_POOL));
    assert_refused(
        &e,
        "layers[6].from",
        "'skip' is not the name of an earlier layer",
    );
}

#[test]
fn an_add_of_two_shapes_is_refused() {
    let narrower = BLOCK.replace("filters = 4", "filters = 3");
    let e = error_of(&residual(&narrower, "in", ACT_AND_GLOBAL_POOL));
    assert!(matches!(e, SpecError::Shape { .. }), "{e:?}");
    assert_refused(&e, "layers[6] (skip)", "which has another shape");
    let pooled = format!("[[layers]]\nkind = \"maxpool\"\nsize = 2\n{BLOCK}");
    let e = error_of(&residual(&pooled, "in", ACT_AND_GLOBAL_POOL));
    assert_refused(&e, "layers[7] (skip)", "adds in (28x28x4)");
}

#[test]
fn an_add_of_what_is_not_an_act_output_is_refused() {
    // The main path ends in a batch norm.
    let no_act = BLOCK.replace("[[layers]]\nkind = \"act\"\n", "");
    let e = error_of(&residual(&no_act, "in", ACT_AND_GLOBAL_POOL));
    assert_refused(
        &e,
        "layers[5] (skip)",
        "both inputs must be outputs of act layers",
    );
    // The skip is a convolution's output.
    let e = error_of(&residual(BLOCK, "c1", ACT_AND_GLOBAL_POOL));
    assert_refused(
        &e,
        "layers[6] (skip)",
        "both inputs must be outputs of act layers",
    );
}

#[test]
fn an_add_of_two_precisions_is_refused() {
    let two_bits = BLOCK.replace("kind = \"act\"\n", "kind = \"act\"\nbits = 2\n");
    let e = error_of(&residual(&two_bits, "in", ACT_AND_GLOBAL_POOL));
    assert!(matches!(e, SpecError::Precision { .. }), "{e:?}");
    assert_refused(&e, "layers[6] (skip)", "both inputs need one precision");
}

#[test]
fn an_add_or_average_pool_without_an_act_after_it_is_refused() {
    let e = error_of(&residual(BLOCK, "in", ""));
    assert_refused(
        &e,
        "layers[6] (skip)",
        "add must be followed by an act layer",
    );
    let e = error_of(&residual(
        BLOCK,
        "in",
        "[[layers]]\nkind = \"act\"\n[[layers]]\nkind = \"avgpool\"\nname = \"gap\"\n",
    ));
    assert_refused(
        &e,
        "layers[8] (gap)",
        "avgpool must be followed by an act layer",
    );
    // An add that ends the network has nothing after it either.
    let e = error_of(
        "[[layers]]\nkind = \"flatten\"\n[[layers]]\nkind = \"dense\"\nunits = 10\n\
         [[layers]]\nkind = \"act\"\nname = \"a\"\n\
         [[layers]]\nkind = \"add\"\nname = \"last\"\nfrom = \"a\"\n",
    );
    assert_refused(
        &e,
        "layers[3] (last)",
        "add must be followed by an act layer",
    );
}

#[test]
fn an_average_pool_of_what_is_not_an_act_output_is_refused() {
    let e = error_of(&residual(
        BLOCK,
        "in",
        "[[layers]]\nkind = \"batchnorm\"\n[[layers]]\nkind = \"avgpool\"\nname = \"gap\"\n[[layers]]\nkind = \"act\"\n",
    ));
    // The add is refused first: a batch norm follows it.
    assert_refused(&e, "layers[6] (skip)", "must be followed by an act layer");
    let e = error_of(
        "[[layers]]\nkind = \"conv2d\"\nfilters = 10\nkernel = 3\n\
         [[layers]]\nkind = \"avgpool\"\nname = \"gap\"\n[[layers]]\nkind = \"act\"\n\
         [[layers]]\nkind = \"flatten\"\n",
    );
    assert_refused(
        &e,
        "layers[1] (gap)",
        "must read the output of an act (or max-pool) layer",
    );
}

#[test]
fn global_average_pooling_of_a_non_square_input_is_refused() {
    // Every data set qnnc reads has square images and every window is square, so a spec cannot
    // reach a non-square tensor today: the layer is resolved directly.
    let spec = toml_spec(&format!("{HEADER}[[layers]]\nkind = \"avgpool\"\n")).unwrap();
    let e = spec
        .resolve(
            &spec.layers[0],
            Shape {
                height: 28,
                width: 14,
                channels: 1,
            },
            &[],
            "net.toml",
            "layers[0]",
        )
        .unwrap_err();
    assert!(matches!(e, SpecError::Shape { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "net.toml: layers[0].size: global average pooling needs a square input, not 28x14x1"
    );
}

#[test]
fn a_precision_that_is_not_one_is_a_precision_error_in_json_too() {
    let e = Spec::parse(
        "{\"name\": \"t\", \"input\": {\"height\": 28, \"width\": 28, \"channels\": 1}, \"classes\": 10, \"precision\": {\"weights\": \"half\", \"activations\": 4}}",
        true,
        "net.json",
    )
    .unwrap_err();
    assert!(matches!(e, SpecError::Precision { .. }), "{e:?}");
    assert_eq!(e.field(), "precision.weights", "{e}");
}
