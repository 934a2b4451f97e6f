using System.Diagnostics;
using System.Text;

namespace NbdFast.Interop.Tests.Support;

/// <summary>A long-running external process (a client holding a connection open) whose stdout lines can be awaited.</summary>
public sealed class BackgroundTool : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Lock _lock = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource Seen)> _waiters = [];

    public BackgroundTool(string fileName, IReadOnlyList<string> arguments)
    {
        Command = fileName + " " + string.Join(" ", arguments.Select(a => a.Length > 200 ? $"<{a.Length} characters>" : a));
        _process = new Process { StartInfo = ToolEnvironment.StartInfo(fileName, arguments) };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data, _stdout, notify: true);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data, _stderr, notify: false);
        _process.Start();
        _process.StandardInput.Close();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Command { get; }

    public static BackgroundTool Python(string script, params string[] arguments) =>
        new(ToolEnvironment.Python, ["-c", script, .. arguments]);

    public string Stdout { get { lock (_lock) { return _stdout.ToString(); } } }

    public string Stderr { get { lock (_lock) { return _stderr.ToString(); } } }

    /// <summary>Waits for a stdout line containing <paramref name="text"/>; throws on timeout or early exit.</summary>
    public async Task WaitForLineAsync(string text, TimeSpan timeout)
    {
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_stdout.ToString().Contains(text, StringComparison.Ordinal))
            {
                return;
            }
            _waiters.Add((line => line.Contains(text, StringComparison.Ordinal), seen));
        }
        Task exited = _process.WaitForExitAsync();
        Task first = await Task.WhenAny(seen.Task, exited, Task.Delay(timeout)).ConfigureAwait(false);
        if (first != seen.Task && !seen.Task.IsCompleted)
        {
            throw new TimeoutException(
                $"'{text}' did not appear on stdout of {Command} ({(first == exited ? "it exited" : $"{timeout.TotalSeconds} s timeout")})\n" +
                $"--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}");
        }
    }

    /// <summary>Waits for exit (killing it after <paramref name="timeout"/>) and returns what it did.</summary>
    public async Task<ToolResult> WaitForExitAsync(TimeSpan timeout)
    {
        bool timedOut = false;
        using (var cts = new CancellationTokenSource(timeout))
        {
            try
            {
                await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                timedOut = true;
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        return new ToolResult(Command, _process.ExitCode, Stdout, Stderr, timedOut);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }

    private void OnLine(string? line, StringBuilder into, bool notify)
    {
        if (line is null)
        {
            return;
        }
        lock (_lock)
        {
            into.Append(line).Append('\n');
            if (!notify)
            {
                return;
            }
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(line))
                {
                    _waiters[i].Seen.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }
}
