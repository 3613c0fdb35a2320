package expect

import "testing"

// TestDescribeIn: a step in words, in English and in Chinese; the
// direction, flags and labels keep their names.
func TestDescribeIn(t *testing.T) {
	tests := []struct {
		step   Step
		en, zh string
	}{
		{C2S(ACK).Length(0), "a C>S ACK without data", "一个不带数据的 C>S ACK 包"},
		{S2C(PSH | ACK).WithData(), "a S>C PSH,ACK with data", "一个带数据的 S>C PSH,ACK 包"},
		{C2S(PSH | ACK).Length(5), "a C>S PSH,ACK with 5 bytes", "一个带 5 字节的 C>S PSH,ACK 包"},
		{S2C(ACK), "a S>C ACK", "一个 S>C ACK 包"},
		{Note("x"), "no segment", "没有包"},
		{Either(C2S(ACK), S2C(ACK)), "a C>S ACK; or a S>C ACK", "一个 C>S ACK 包; 或者一个 S>C ACK 包"},
	}
	for _, tt := range tests {
		if got := tt.step.DescribeIn(English); got != tt.en || tt.step.Describe() != tt.en {
			t.Errorf("English: %q, want %q", got, tt.en)
		}
		if got := tt.step.DescribeIn(Chinese); got != tt.zh {
			t.Errorf("Chinese: %q, want %q", got, tt.zh)
		}
	}
}
