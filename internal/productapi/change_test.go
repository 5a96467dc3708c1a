package productapi_test

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ratelab/ratelab/internal/productapi"
)

// TestStrictPut: a PUT body is exactly one JSON object of known fields, sent as
// application/json; everything else is refused with a message, and nothing changes.
func TestStrictPut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string // "-" for none
		body        string
		want        int
		wantErr     string  // in the error message
		wantPrice   float64 // when 200
	}{
		// Content-Type.
		{name: "application/json", body: `{"price": 3}`, want: 200, wantPrice: 3},
		{name: "charset utf-8", contentType: "application/json; charset=utf-8", body: `{"price": 4}`, want: 200, wantPrice: 4},
		{name: "charset UTF-8, upper case type", contentType: "Application/JSON; Charset=\"UTF-8\"", body: `{"price": 5}`, want: 200, wantPrice: 5},
		{name: "no content type", contentType: "-", body: `{"price": 3}`, want: 415, wantErr: "send Content-Type: application/json"},
		{name: "text/plain", contentType: "text/plain", body: `{"price": 3}`, want: 415, wantErr: `Content-Type "text/plain"`},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: `price=3`, want: 415, wantErr: "application/json"},
		{name: "json-ish suffix", contentType: "application/jsonp", body: `{"price": 3}`, want: 415, wantErr: "application/json"},
		{name: "latin-1", contentType: "application/json; charset=iso-8859-1", body: `{"price": 3}`, want: 415, wantErr: "JSON is UTF-8"},
		{name: "malformed content type", contentType: "application/json; =", body: `{"price": 3}`, want: 415, wantErr: "application/json"},
		// One object, nothing after it.
		{name: "trailing garbage", body: `{"price":3} garbage`, want: 400, wantErr: "follows the JSON object"},
		{name: "two objects", body: `{"price":1}{"price":2}`, want: 400, wantErr: "a second object follows"},
		{name: "object then array", body: `{"price":1} []`, want: 400, wantErr: "follows the JSON object"},
		{name: "trailing white space", body: "{\"price\": 6}\n\t ", want: 200, wantPrice: 6},
		{name: "leading white space", body: " \n{\"price\": 7}", want: 200, wantPrice: 7},
		{name: "truncated", body: `{"price": 3`, want: 400, wantErr: "ends inside"},
		{name: "empty body", contentType: "application/json", body: ``, want: 400, wantErr: "one JSON object"},
		{name: "syntax error", body: `{"price": 3,}`, want: 400, wantErr: "not valid JSON"},
		// Not an object.
		{name: "null", body: `null`, want: 400, wantErr: "one JSON object"},
		{name: "array", body: `[{"price": 3}]`, want: 400, wantErr: "one JSON object"},
		{name: "string", body: `"price"`, want: 400, wantErr: "one JSON object"},
		{name: "number", body: `3`, want: 400, wantErr: "one JSON object"},
		{name: "empty object", body: `{}`, want: 400, wantErr: "changes nothing"},
		// Fields.
		{name: "unknown field", body: `{"colour": "red"}`, want: 400, wantErr: `unknown field "colour"`},
		{name: "field in another case", body: `{"Price": 3}`, want: 400, wantErr: `unknown field "Price"`},
		{name: "duplicate field", body: `{"price": 1, "price": 2}`, want: 400, wantErr: `"price" is given twice`},
		{name: "name null", body: `{"name": null}`, want: 400, wantErr: "name must be a JSON string"},
		{name: "name a number", body: `{"name": 5}`, want: 400, wantErr: "name must be a JSON string"},
		{name: "invalid UTF-8", body: "{\"name\": \"\xff\"}", want: 400, wantErr: "not valid UTF-8"},
		// Numbers.
		{name: "minus zero", body: `{"price": -0}`, want: 200, wantPrice: 0},
		{name: "minus zero point zero", body: `{"price": -0.0e5}`, want: 200, wantPrice: 0},
		{name: "exponent", body: `{"price": 1.5e2}`, want: 200, wantPrice: 150},
		{name: "the maximum", body: `{"price": 1e9}`, want: 200, wantPrice: 1e9},
		{name: "negative", body: `{"price": -5}`, want: 400, wantErr: "between 0 and 1e+09"},
		{name: "too big", body: `{"price": 1000000001}`, want: 400, wantErr: "between 0 and 1e+09"},
		{name: "beyond float64", body: `{"price": 1e400}`, want: 400, wantErr: "between 0 and"},
		{name: "NaN as a string", body: `{"price": "NaN"}`, want: 400, wantErr: "price must be a JSON number"},
		{name: "NaN bare", body: `{"price": NaN}`, want: 400, wantErr: "not valid JSON"},
		{name: "Infinity bare", body: `{"price": Infinity}`, want: 400, wantErr: "not valid JSON"},
		{name: "price null", body: `{"price": null}`, want: 400, wantErr: "price must be a JSON number"},
		{name: "price a string", body: `{"price": "3"}`, want: 400, wantErr: "price must be a JSON number"},
		{name: "price hex", body: `{"price": 0x10}`, want: 400, wantErr: "not valid JSON"},
		{name: "price with a plus", body: `{"price": +3}`, want: 400, wantErr: "not valid JSON"},
		{name: "price with leading zeros", body: `{"price": 03}`, want: 400, wantErr: "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			backend := productapi.NewBackend(0, 0)
			h := newAPI(t, productapi.Config{Backend: backend}).Handler()
			var headers []string
			switch tt.contentType {
			case "":
			case "-":
				headers = []string{"Content-Type:"}
			default:
				headers = []string{"Content-Type: " + tt.contentType}
			}
			r := httptestRequest(http.MethodPut, "/products/7", tt.body, "192.0.2.1:1", headers)
			if tt.contentType == "-" {
				r.Header.Del("Content-Type")
			}
			w := newRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("PUT %q (Content-Type %q): %d %s; want %d", tt.body, r.Header.Get("Content-Type"), w.Code, w.Body, tt.want)
			}
			if tt.want != http.StatusOK {
				if msg := decodeError(t, w.Body.Bytes()); !strings.Contains(msg, tt.wantErr) {
					t.Errorf("error %q; want it to say %q", msg, tt.wantErr)
				}
				if w.Code == http.StatusUnsupportedMediaType && w.Header().Get("Content-Type") != "application/json" {
					t.Errorf("415 answered as %q", w.Header().Get("Content-Type"))
				}
				if _, _, body := getDirect(h, "/products/7"); decodeProduct(t, body).Version != 1 {
					t.Errorf("a refused PUT changed the product: %s", body)
				}
				return
			}
			p := decodeProduct(t, w.Body.Bytes())
			if p.Price != tt.wantPrice || math.Signbit(p.Price) || p.Version != 2 {
				t.Errorf("PUT %q: price %v (sign bit %v) version %d; want %v, version 2", tt.body, p.Price, math.Signbit(p.Price), p.Version, tt.wantPrice)
			}
			var raw map[string]json.RawMessage
			_ = json.Unmarshal(w.Body.Bytes(), &raw)
			if tt.wantPrice == 0 && string(raw["price"]) != "0" {
				t.Errorf("price is written %s; want 0", raw["price"])
			}
		})
	}
}

// TestPutFields: name and description change, absent fields stay.
func TestPutFields(t *testing.T) {
	t.Parallel()
	h := newAPI(t, productapi.Config{}).Handler()
	before := decodeProduct(t, do(h, http.MethodGet, "/products/9", "192.0.2.1:1").Body.Bytes())
	w := newRecorder()
	h.ServeHTTP(w, httptestRequest(http.MethodPut, "/products/9", `{"name": "Renamed \u00e9", "description": ""}`, "192.0.2.1:1", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	p := decodeProduct(t, w.Body.Bytes())
	if p.Name != "Renamed é" || p.Description != "" || p.Price != before.Price || p.Version != before.Version+1 {
		t.Errorf("after PUT: %+v; before %+v", p, before)
	}
}

// getDirect reads a product through h in process.
func getDirect(h http.Handler, target string) (int, http.Header, []byte) {
	w := do(h, http.MethodGet, target, "192.0.2.1:1")
	return w.Code, w.Header(), w.Body.Bytes()
}

// TestPutBodyReadFails: a body that breaks off is a 400, never a 200 with nothing.
func TestPutBodyReadFails(t *testing.T) {
	t.Parallel()
	h := newAPI(t, productapi.Config{}).Handler()
	for name, err := range map[string]error{"timeout": os.ErrDeadlineExceeded, "reset": errors.New("connection reset by peer")} {
		r := httptestRequest(http.MethodPut, "/products/3", "", "192.0.2.1:1", []string{"Content-Type: application/json"})
		r.Body = io.NopCloser(io.MultiReader(strings.NewReader(`{"price": `), failingReader{err}))
		w := newRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s; want 400", name, w.Code, w.Body)
		}
		decodeError(t, w.Body.Bytes())
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }
