"""Constants and small helpers shared by the test layers."""

OPERATOR_KEY = "hrk_test_operator_" + "k" * 32
