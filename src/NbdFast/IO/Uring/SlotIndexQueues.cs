namespace NbdFast.IO.Uring;

/// <summary>
/// The slots waiting to be sent, in reply order, held as indices into the connection's slot array. Indices
/// rather than references: storing a reference into an array costs a GC write barrier and a covariance check
/// for every request, and the power-of-two capacity turns the wrap-around into a mask instead of a division.
/// Owned by one reactor thread; a mutable struct, so keep it in a field and never copy it.
/// </summary>
internal struct SlotIndexRing
{
    private readonly int[] _items;
    private readonly int _mask;
    private int _head;

    public SlotIndexRing(int minimumCapacity)
    {
        _items = new int[(int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(minimumCapacity, 1))];
        _mask = _items.Length - 1;
    }

    public int Count { get; private set; }

    /// <summary>The index <paramref name="position"/> places behind the head.</summary>
    public readonly int At(int position) => _items[(_head + position) & _mask];

    public void PushBack(int index)
    {
        // Each slot is queued at most once and the capacity is at least the slot count, so this cannot overflow.
        System.Diagnostics.Debug.Assert(Count < _items.Length, "send queue overflow");
        _items[(_head + Count) & _mask] = index;
        Count++;
    }

    /// <summary>Puts a slot back at the head, as when the rest of a short linked send must go first.</summary>
    public void PushFront(int index)
    {
        System.Diagnostics.Debug.Assert(Count < _items.Length, "send queue overflow");
        _head = (_head - 1) & _mask;
        _items[_head] = index;
        Count++;
    }

    public int PopFront()
    {
        int index = _items[_head];
        _head = (_head + 1) & _mask;
        Count--;
        return index;
    }
}

/// <summary>Free slots as a stack of indices (last freed, first reused: its memory is still warm in the cache).</summary>
internal struct SlotIndexStack
{
    private readonly int[] _items;

    public SlotIndexStack(int capacity) => _items = new int[capacity];

    public int Count { get; private set; }

    public void Push(int index) => _items[Count++] = index;

    public int Pop() => _items[--Count];
}
