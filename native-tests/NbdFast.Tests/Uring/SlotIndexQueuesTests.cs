using NbdFast.IO.Uring;

namespace NbdFast.Tests.Uring;

/// <summary>
/// The send queue and free list of a ring connection: replies must leave in the order they were queued, across
/// the ring's wrap-around, and a short linked send's remainder must go out before everything queued behind it.
/// </summary>
public sealed class SlotIndexQueuesTests
{
    [Fact]
    public void RingKeepsOrderAcrossManyWrapArounds()
    {
        var ring = new SlotIndexRing(5); // rounded up to 8
        int next = 0;
        int expected = 0;
        for (int round = 0; round < 100; round++)
        {
            // Fill to a different depth each round so the head lands on every position.
            int depth = 1 + (round % 5);
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
    public void RingHoldsAsManyAsAsked_WhenThatIsNotAPowerOfTwo()
    {
        var ring = new SlotIndexRing(6);
        for (int i = 0; i < 6; i++)
        {
            ring.PushBack(i);
        }
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal(i, ring.PopFront());
        }
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
