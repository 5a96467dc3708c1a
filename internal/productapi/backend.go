package productapi

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratelab/ratelab/internal/cache"
)

// Product is what GET /products/{id} answers.
type Product struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       float64   `json:"price"`
	Version     int64     `json:"version"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Change is the body of PUT /products/{id}: the fields to change; absent ones stay.
type Change struct {
	Name        *string  `json:"name,omitempty"`
	Description *string  `json:"description,omitempty"`
	Price       *float64 `json:"price,omitempty"`
}

// DefaultCatalogSize is how many products a Backend knows unless told otherwise.
const DefaultCatalogSize = 1000

// Backend is the slow system of record behind the cache: every Get takes Delay and
// is counted. It knows the products "1" to "<size>". Share one Backend between the
// nodes of one process and Calls counts backend calls across all of them. It is safe
// for concurrent use.
type Backend struct {
	delay time.Duration
	size  int
	epoch time.Time
	calls atomic.Int64

	mu      sync.Mutex
	changed map[string]Product
}

// NewBackend returns a backend whose reads take delay and that knows products "1"
// to "<size>" (DefaultCatalogSize when size is 0).
func NewBackend(delay time.Duration, size int) *Backend {
	if size <= 0 {
		size = DefaultCatalogSize
	}
	return &Backend{delay: delay, size: size, epoch: time.Now().UTC().Truncate(time.Second), changed: make(map[string]Product)}
}

// Delay is how long each Get takes.
func (b *Backend) Delay() time.Duration { return b.delay }

// Calls is how many Gets the backend has served (or started), found or not.
func (b *Backend) Calls() int64 { return b.calls.Load() }

// Get reads one product and answers after the backend's delay, with the product as
// it was when the read began (a slow query on a snapshot: the case where a cache fill
// can race an invalidation). An unknown id wraps cache.ErrNotFound.
func (b *Backend) Get(ctx context.Context, id string) (Product, error) {
	b.calls.Add(1)
	b.mu.Lock()
	p, err := b.lookup(id)
	b.mu.Unlock()
	if b.delay > 0 {
		t := time.NewTimer(b.delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Product{}, fmt.Errorf("backend: reading product %q: %w", id, ctx.Err())
		case <-t.C:
		}
	}
	return p, err
}

// Put changes a product at once (writes are not slow) and returns its new version.
func (b *Backend) Put(_ context.Context, id string, c Change) (Product, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.lookup(id)
	if err != nil {
		return Product{}, err
	}
	if c.Name != nil {
		p.Name = *c.Name
	}
	if c.Description != nil {
		p.Description = *c.Description
	}
	if c.Price != nil {
		p.Price = *c.Price
	}
	p.Version++
	p.UpdatedAt = time.Now().UTC()
	b.changed[id] = p
	return p, nil
}

// lookup returns the current product; b.mu is held.
func (b *Backend) lookup(id string) (Product, error) {
	if p, ok := b.changed[id]; ok {
		return p, nil
	}
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 || n > b.size || strconv.Itoa(n) != id {
		return Product{}, fmt.Errorf("backend: product %q: %w", id, cache.ErrNotFound)
	}
	return Product{
		ID:          id,
		Name:        "Product " + id,
		Description: "Product number " + id + " of the ratelab catalog.",
		Price:       float64(100+(n*37)%9900) / 100,
		Version:     1,
		UpdatedAt:   b.epoch,
	}, nil
}
