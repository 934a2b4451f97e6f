using NbdFast.IO.Uring;

namespace NbdFast.Tests.Uring;

/// <summary>
/// The send queue and free list of a ring connection: replies must leave in the order they were queued, across
/// the ring's wrap-around, and a short linked send's remainder must go out before everything queued behind it.
/// </summary>
public sealed class SlotIndexQueuesTests
{
    /// <summary>
    /// Neither capacity is a power of two (the ring rounds them up to 8): the first round fills a fresh ring to
    /// exactly the capacity asked for, and later rounds fill it to every other depth so the head lands everywhere.
    /// </summary>
    [Theory]
    [InlineData(5)]
    [InlineData(6)]
    public void RingKeepsOrderAcrossManyWrapArounds_AtEveryDepthUpToTheCapacityAsked(int capacity)
    {
        var ring = new SlotIndexRing(capacity);
        int next = 0;
        int expected = 0;
        for (int round = 0; round < 100; round++)
        {
            int depth = capacity - (round % capacity);
            for (int i = 0; i < depth; i++)
            {
                ring.PushBack(next++);
            }
            Assert.Equal(depth, ring.Count);
            for (int i = 0; i < depth; i++)
            {
                Assert.Equal(expected + i, ring.At(i));
            }
            for (int i = 0; i < depth; i++)
            {
                Assert.Equal(expected++, ring.PopFront());
            }
            Assert.Equal(0, ring.Count);
        }
    }

    [Fact]
    public void PushFrontGoesBeforeWhatIsQueued_EvenWhenTheHeadIsAtTheStart()
    {
        var ring = new SlotIndexRing(4);
        ring.PushBack(1);
        ring.PushBack(2);
        ring.PushFront(0);
        Assert.Equal(3, ring.Count);
        Assert.Equal([0, 1, 2], [ring.PopFront(), ring.PopFront(), ring.PopFront()]);
    }

    [Fact]
    public void StackReusesTheLastFreedFirst()
    {
        var stack = new SlotIndexStack(3);
        stack.Push(2);
        stack.Push(0);
        stack.Push(1);
        Assert.Equal(3, stack.Count);
        Assert.Equal(1, stack.Pop());
        Assert.Equal(0, stack.Pop());
        stack.Push(7);
        Assert.Equal(7, stack.Pop());
        Assert.Equal(2, stack.Pop());
        Assert.Equal(0, stack.Count);
    }

    [Fact]
    public void StackRefusesMoreThanItsCapacity()
    {
        // A slot freed twice would overflow the free list: that must fail loudly, not hand the slot out twice.
        var stack = new SlotIndexStack(1);
        stack.Push(0);
        bool threw = false;
        try
        {
            stack.Push(0);
        }
        catch (IndexOutOfRangeException)
        {
            threw = true;
        }
        Assert.True(threw);
    }
}
