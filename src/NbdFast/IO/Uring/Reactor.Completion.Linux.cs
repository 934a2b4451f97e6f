using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>Reaping completions and routing each to the connection that submitted it.</summary>
internal sealed unsafe partial class Reactor
{
    private int ActiveConnections => MaxConnections - _freeIndices.Count;

    private void ReapCompletions()
    {
        while (true)
        {
            int count = _ring!.Reap(_completions);
            if (count == 0)
            {
                return;
            }
            for (int i = 0; i < count; i++)
            {
                Dispatch(_completions[i]);
            }
        }
    }

    private void Dispatch(in Cqe cqe)
    {
        OpKind kind = UserData.Kind(cqe.UserData);
        if (kind == OpKind.Wake)
        {
            ArmWake();
            return;
        }
        int index = UserData.Connection(cqe.UserData);
        UringConnection? connection = _connections[index];
        if (connection is null || _generations[index] != UserData.Generation(cqe.UserData))
        {
            return; // a completion for a connection that no longer exists
        }
        connection.OnCompletion(kind, UserData.Slot(cqe.UserData), cqe.Result);
    }

    /// <summary>Gives a connection an index and a generation for its user_data; false when the reactor is full.</summary>
    internal bool TryRegister(UringConnection connection, out int index, out int generation)
    {
        if (!_freeIndices.TryPop(out index))
        {
            generation = 0;
            return false;
        }
        generation = _generations[index];
        _connections[index] = connection;
        return true;
    }

    /// <summary>Frees a connection's index; called once no submission of it is outstanding.</summary>
    internal void Unregister(int index)
    {
        _connections[index] = null;
        _generations[index] = (_generations[index] + 1) & UserData.GenerationMask;
        _freeIndices.Push(index);
    }

    /// <summary>Asks for <paramref name="connection"/>'s queued replies to be sent at the end of this loop turn.</summary>
    internal void ScheduleSend(UringConnection connection) => _pendingSends.Add(connection);

    private void FlushSends()
    {
        // Replies completed in one turn leave together: one SENDMSG per connection per turn.
        for (int i = 0; i < _pendingSends.Count; i++)
        {
            _pendingSends[i].FlushSends();
        }
        _pendingSends.Clear();
    }
}
