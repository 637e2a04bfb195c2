//! Names of the TFLite builtin operators, indexed by `BuiltinOperator` code (schema v3), so
//! that a refused op is named the way the TFLite documentation names it.

/// `BUILTIN_NAMES[code]` is the upstream name of builtin operator `code`.
pub const BUILTIN_NAMES: [&str; 209] = [
    "ADD",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "DEPTH_TO_SPACE",
    "DEQUANTIZE",
    "EMBEDDING_LOOKUP",
    "FLOOR",
    "FULLY_CONNECTED",
    "HASHTABLE_LOOKUP",
    "L2_NORMALIZATION",
    "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION",
    "LOGISTIC",
    "LSH_PROJECTION",
    "LSTM",
    "MAX_POOL_2D",
    "MUL",
    "RELU",
    "RELU_N1_TO_1",
    "RELU6",
    "RESHAPE",
    "RESIZE_BILINEAR",
    "RNN",
    "SOFTMAX",
    "SPACE_TO_DEPTH",
    "SVDF",
    "TANH",
    "CONCAT_EMBEDDINGS",
    "SKIP_GRAM",
    "CALL",
    "CUSTOM",
    "EMBEDDING_LOOKUP_SPARSE",
    "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN",
    "GATHER",
    "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND",
    "TRANSPOSE",
    "MEAN",
    "SUB",
    "DIV",
    "SQUEEZE",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE",
    "BIDIRECTIONAL_SEQUENCE_RNN",
    "EXP",
    "TOPK_V2",
    "SPLIT",
    "LOG_SOFTMAX",
    "DELEGATE",
    "BIDIRECTIONAL_SEQUENCE_LSTM",
    "CAST",
    "PRELU",
    "MAXIMUM",
    "ARG_MAX",
    "MINIMUM",
    "LESS",
    "NEG",
    "PADV2",
    "GREATER",
    "GREATER_EQUAL",
    "LESS_EQUAL",
    "SELECT",
    "SLICE",
    "SIN",
    "TRANSPOSE_CONV",
    "SPARSE_TO_DENSE",
    "TILE",
    "EXPAND_DIMS",
    "EQUAL",
    "NOT_EQUAL",
    "LOG",
    "SUM",
    "SQRT",
    "RSQRT",
    "SHAPE",
    "POW",
    "ARG_MIN",
    "FAKE_QUANT",
    "REDUCE_PROD",
    "REDUCE_MAX",
    "PACK",
    "LOGICAL_OR",
    "ONE_HOT",
    "LOGICAL_AND",
    "LOGICAL_NOT",
    "UNPACK",
    "REDUCE_MIN",
    "FLOOR_DIV",
    "REDUCE_ANY",
    "SQUARE",
    "ZEROS_LIKE",
    "FILL",
    "FLOOR_MOD",
    "RANGE",
    "RESIZE_NEAREST_NEIGHBOR",
    "LEAKY_RELU",
    "SQUARED_DIFFERENCE",
    "MIRROR_PAD",
    "ABS",
    "SPLIT_V",
    "UNIQUE",
    "CEIL",
    "REVERSE_V2",
    "ADD_N",
    "GATHER_ND",
    "COS",
    "WHERE",
    "RANK",
    "ELU",
    "REVERSE_SEQUENCE",
    "MATRIX_DIAG",
    "QUANTIZE",
    "MATRIX_SET_DIAG",
    "ROUND",
    "HARD_SWISH",
    "IF",
    "WHILE",
    "NON_MAX_SUPPRESSION_V4",
    "NON_MAX_SUPPRESSION_V5",
    "SCATTER_ND",
    "SELECT_V2",
    "DENSIFY",
    "SEGMENT_SUM",
    "BATCH_MATMUL",
    "PLACEHOLDER_FOR_GREATER_OP_CODES",
    "CUMSUM",
    "CALL_ONCE",
    "BROADCAST_TO",
    "RFFT2D",
    "CONV_3D",
    "IMAG",
    "REAL",
    "COMPLEX_ABS",
    "HASHTABLE",
    "HASHTABLE_FIND",
    "HASHTABLE_IMPORT",
    "HASHTABLE_SIZE",
    "REDUCE_ALL",
    "CONV_3D_TRANSPOSE",
    "VAR_HANDLE",
    "READ_VARIABLE",
    "ASSIGN_VARIABLE",
    "BROADCAST_ARGS",
    "RANDOM_STANDARD_NORMAL",
    "BUCKETIZE",
    "RANDOM_UNIFORM",
    "MULTINOMIAL",
    "GELU",
    "DYNAMIC_UPDATE_SLICE",
    "RELU_0_TO_1",
    "UNSORTED_SEGMENT_PROD",
    "UNSORTED_SEGMENT_MAX",
    "UNSORTED_SEGMENT_SUM",
    "ATAN2",
    "UNSORTED_SEGMENT_MIN",
    "SIGN",
    "BITCAST",
    "BITWISE_XOR",
    "RIGHT_SHIFT",
    "STABLEHLO_LOGISTIC",
    "STABLEHLO_ADD",
    "STABLEHLO_DIVIDE",
    "STABLEHLO_MULTIPLY",
    "STABLEHLO_MAXIMUM",
    "STABLEHLO_RESHAPE",
    "STABLEHLO_CLAMP",
    "STABLEHLO_CONCATENATE",
    "STABLEHLO_BROADCAST_IN_DIM",
    "STABLEHLO_CONVOLUTION",
    "STABLEHLO_SLICE",
    "STABLEHLO_CUSTOM_CALL",
    "STABLEHLO_REDUCE",
    "STABLEHLO_ABS",
    "STABLEHLO_AND",
    "STABLEHLO_COSINE",
    "STABLEHLO_EXPONENTIAL",
    "STABLEHLO_FLOOR",
    "STABLEHLO_LOG",
    "STABLEHLO_MINIMUM",
    "STABLEHLO_NEGATE",
    "STABLEHLO_OR",
    "STABLEHLO_POWER",
    "STABLEHLO_REMAINDER",
    "STABLEHLO_RSQRT",
    "STABLEHLO_SELECT",
    "STABLEHLO_SUBTRACT",
    "STABLEHLO_TANH",
    "STABLEHLO_SCATTER",
    "STABLEHLO_COMPARE",
    "STABLEHLO_CONVERT",
    "STABLEHLO_DYNAMIC_SLICE",
    "STABLEHLO_DYNAMIC_UPDATE_SLICE",
    "STABLEHLO_PAD",
    "STABLEHLO_IOTA",
    "STABLEHLO_DOT_GENERAL",
    "STABLEHLO_REDUCE_WINDOW",
    "STABLEHLO_SORT",
    "STABLEHLO_WHILE",
    "STABLEHLO_GATHER",
    "STABLEHLO_TRANSPOSE",
    "DILATE",
    "STABLEHLO_RNG_BIT_GENERATOR",
    "REDUCE_WINDOW",
    "STABLEHLO_COMPOSITE",
    "STABLEHLO_SHIFT_LEFT",
    "STABLEHLO_CBRT",
];

/// The name of builtin operator `code`, or `None` for a code newer than this table.
pub fn builtin_name(code: i32) -> Option<&'static str> {
    usize::try_from(code).ok().and_then(|i| BUILTIN_NAMES.get(i)).copied()
}

// Codes of the operators the importer maps.
/// `ADD`.
pub const ADD: i32 = 0;
/// `AVERAGE_POOL_2D`.
pub const AVERAGE_POOL_2D: i32 = 1;
/// `DEQUANTIZE`.
pub const DEQUANTIZE: i32 = 6;
/// `CONCATENATION`.
pub const CONCATENATION: i32 = 2;
/// `CONV_2D`.
pub const CONV_2D: i32 = 3;
/// `DEPTHWISE_CONV_2D`.
pub const DEPTHWISE_CONV_2D: i32 = 4;
/// `FULLY_CONNECTED`.
pub const FULLY_CONNECTED: i32 = 9;
/// `MUL`.
pub const MUL: i32 = 18;
/// `MAX_POOL_2D`.
pub const MAX_POOL_2D: i32 = 17;
/// `TRANSPOSE`.
pub const TRANSPOSE: i32 = 39;
/// `MEAN`.
pub const MEAN: i32 = 40;
/// `PAD`.
pub const PAD: i32 = 34;
/// `RESHAPE`.
pub const RESHAPE: i32 = 22;
/// `RESIZE_BILINEAR`.
pub const RESIZE_BILINEAR: i32 = 23;
/// `RESIZE_NEAREST_NEIGHBOR`.
pub const RESIZE_NEAREST_NEIGHBOR: i32 = 97;
/// `SOFTMAX`.
pub const SOFTMAX: i32 = 25;
/// `QUANTIZE`.
pub const QUANTIZE: i32 = 114;
/// `LOGISTIC`.
pub const LOGISTIC: i32 = 14;
/// `RELU`.
pub const RELU: i32 = 19;
/// `RELU6`.
pub const RELU6: i32 = 21;
/// `SQUEEZE`.
pub const SQUEEZE: i32 = 43;
/// `PRELU`.
pub const PRELU: i32 = 54;
/// `MAXIMUM`.
pub const MAXIMUM: i32 = 55;
/// `MINIMUM`.
pub const MINIMUM: i32 = 57;
/// `REDUCE_MAX`.
pub const REDUCE_MAX: i32 = 82;
/// `LEAKY_RELU`.
pub const LEAKY_RELU: i32 = 98;
/// `STRIDED_SLICE` (folded).
pub const STRIDED_SLICE: i32 = 45;
/// `LOG_SOFTMAX`.
pub const LOG_SOFTMAX: i32 = 50;
/// `TILE` (folded).
pub const TILE: i32 = 69;
/// `SHAPE` (folded).
pub const SHAPE: i32 = 77;
/// `PACK` (folded).
pub const PACK: i32 = 83;
/// `HARD_SWISH`.
pub const HARD_SWISH: i32 = 117;
/// LSTM, RNN, SVDF and their sequence forms: recurrent ops, refused with why.
pub const RECURRENT: [i32; 7] = [16, 24, 27, 35, 44, 46, 52];
/// A custom operator (named by its `custom_code`).
pub const CUSTOM: i32 = 32;
