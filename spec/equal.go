package spec

import "reflect"

// Equal reports whether two specs say the same thing, ignoring line
// numbers and the file name.
func Equal(a, b *Spec) bool {
	return reflect.DeepEqual(stripLines(a), stripLines(b))
}

func stripLines(s *Spec) Spec {
	c := *s
	c.File = ""
	c.Knobs = append([]Knob(nil), s.Knobs...)
	for i := range c.Knobs {
		c.Knobs[i].Line = 0
	}
	c.States = append([]State(nil), s.States...)
	for i := range c.States {
		c.States[i].Line = 0
	}
	c.Caps = append([]Cap(nil), s.Caps...)
	for i := range c.Caps {
		c.Caps[i].Line = 0
	}
	c.Classify = append([]ClassRule(nil), s.Classify...)
	for i := range c.Classify {
		c.Classify[i].Line = 0
	}
	c.Creates = append([]Create(nil), s.Creates...)
	for i := range c.Creates {
		c.Creates[i].Line = 0
	}
	c.SeedChoices = append([]SeedChoice(nil), s.SeedChoices...)
	for i := range c.SeedChoices {
		c.SeedChoices[i].Line = 0
	}
	c.Whys = append([]Why(nil), s.Whys...)
	for i := range c.Whys {
		c.Whys[i].Line = 0
	}
	for d := range c.Table {
		rows := make([][]Cell, len(s.Table[d]))
		for ci, row := range s.Table[d] {
			rows[ci] = append([]Cell(nil), row...)
			for si := range rows[ci] {
				rows[ci][si].Line = 0
			}
		}
		c.Table[d] = rows
	}
	return c
}
