using Xunit;

// These tests share one real process: its address space (mmap, munmap, MAP_FIXED), /dev/kvm and the guest loader's
// low code pages. A test's munmap of its whole original range can land on a mapping another test made in a hole it
// had already unmapped, so the tests here (seconds in all) run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
