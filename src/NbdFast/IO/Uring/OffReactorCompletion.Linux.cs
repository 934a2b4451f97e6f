using System.Runtime.CompilerServices;

namespace NbdFast.IO.Uring;

/// <summary>Bridges a device that is not ring-native back to the reactor.</summary>
internal static class OffReactorCompletion
{
    /// <summary>Waits for the device on whatever thread completes it, then queues the slot to its reactor.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public static async ValueTask HandBackAsync(Reactor reactor, UringSlot slot, ValueTask<ReadOnlyMemory<byte>> pending)
    {
        slot.ExecutorReply = await pending.ConfigureAwait(false);
        reactor.Post(slot);
    }

    /// <summary>Waits for a device flush on whatever thread completes it, then posts its outcome to the reactor.</summary>
    public static async Task HandBackFlushAsync(Reactor reactor, ValueTask pending, Func<Exception?, IReactorWork> done)
    {
        Exception? error = null;
        try
        {
            await pending.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
        }
        reactor.Post(done(error));
    }
}
