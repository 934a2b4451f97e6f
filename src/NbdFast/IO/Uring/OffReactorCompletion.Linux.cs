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
}
