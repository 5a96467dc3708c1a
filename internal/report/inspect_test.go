package report

import "testing"

func TestInspectHashQuotesControlCharacters(t *testing.T) {
	t.Parallel()
	got := inspectHash(map[string]string{"v": "{\"id\":\"42\"}\n", "g": "0", "x": "1795337263208", "e": "a\x1b[31mred"})
	want := `e="a\x1b[31mred" g=0 v="{\"id\":\"42\"}\n" x=1795337263208`
	if got != want {
		t.Fatalf("inspectHash = %s\nwant          %s", got, want)
	}
}
