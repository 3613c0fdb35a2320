package expect

import (
	"fmt"
	"strconv"
)

// Lang is a language in which steps are explained.
type Lang uint8

// The languages of explanations: English, and Chinese, the language of the
// blog post tcplab reproduces.
const (
	English Lang = iota
	Chinese
	langs
)

var langNames = [langs]string{"en", "zh"}

// String returns the language's code: "en" or "zh".
func (l Lang) String() string {
	if l < langs {
		return langNames[l]
	}
	return "lang(" + strconv.Itoa(int(l)) + ")"
}

// ParseLang returns the language whose code is s ("en" or "zh").
func ParseLang(s string) (Lang, error) {
	for i, n := range langNames {
		if n == s {
			return Lang(i), nil
		}
	}
	return English, fmt.Errorf("unknown language %q: use en or zh", s)
}

// MarshalText encodes the language as its code.
func (l Lang) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText decodes a language code; empty means English.
func (l *Lang) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*l = English
		return nil
	}
	v, err := ParseLang(string(b))
	*l = v
	return err
}

// StepNum numbers a scenario's top-level steps from 1, as its walkthrough
// does. The zero StepNum is no step; End is past the last step.
type StepNum int

// End is the place after the last step, where a segment that no step
// expects is reported.
const End StepNum = -1

// String returns the number, "end" for End and "-" for no step.
func (n StepNum) String() string {
	switch {
	case n == End:
		return "end"
	case n <= 0:
		return "-"
	}
	return strconv.Itoa(int(n))
}

// MarshalText encodes the step number as String does.
func (n StepNum) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// UnmarshalText decodes what MarshalText wrote.
func (n *StepNum) UnmarshalText(b []byte) error {
	switch s := string(b); s {
	case "end":
		*n = End
	case "-", "":
		*n = 0
	default:
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			return fmt.Errorf("bad step number %q", s)
		}
		*n = StepNum(v)
	}
	return nil
}

// Field names what differs between an expected step and a segment.
type Field uint8

// The fields of a mismatch. FieldMissing is a step with no segment left,
// FieldUnexpected a segment after the last step, FieldSteps a match that
// gave up, FieldEnding a connection that did not end as an Ends step
// needs, FieldKernel a segment whose kernel account lacks what its step
// requires (Step.Kernel).
const (
	FieldStream Field = iota + 1
	FieldDir
	FieldFlags
	FieldSeq
	FieldAck
	FieldLen
	FieldLabels
	FieldCheck
	FieldMissing
	FieldUnexpected
	FieldSteps
	FieldEnding
	FieldKernel
	fieldEnd
)

var fieldNames = [fieldEnd]string{"", "stream", "dir", "flags", "seq", "ack", "len", "labels", "check", "missing", "unexpected", "steps", "ending", "kernel"}

// String returns the field's name, as a mismatch report prints it.
func (f Field) String() string {
	if f > 0 && f < fieldEnd {
		return fieldNames[f]
	}
	return "field(" + strconv.Itoa(int(f)) + ")"
}

// MarshalText encodes the field as its name.
func (f Field) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText decodes a field name.
func (f *Field) UnmarshalText(b []byte) error {
	for i := 1; i < int(fieldEnd); i++ {
		if fieldNames[i] == string(b) {
			*f = Field(i)
			return nil
		}
	}
	return fmt.Errorf("unknown mismatch field %q", b)
}

// Diff is one field in which a segment differs from its expected step.
type Diff struct {
	Field Field  `json:"field"`
	Want  string `json:"want"`
	Got   string `json:"got"`
}
