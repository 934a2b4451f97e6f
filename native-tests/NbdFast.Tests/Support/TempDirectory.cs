namespace NbdFast.Tests.Support;

/// <summary>A unique temporary directory, deleted with everything in it on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    /// <summary>Creates a fresh directory under the system temp path.</summary>
    public TempDirectory(string prefix = "nbdfast-test-") => FullPath = Directory.CreateTempSubdirectory(prefix).FullName;

    /// <summary>The directory.</summary>
    public string FullPath { get; }

    /// <summary>A path inside the directory.</summary>
    public string File(string name) => Path.Combine(FullPath, name);

    /// <summary>Writes <paramref name="size"/> deterministic pseudo-random bytes to a new file and returns its path.</summary>
    public string CreateRandomFile(string name, long size, int seed)
    {
        string path = File(name);
        var random = new Random(seed);
        byte[] buffer = new byte[1024 * 1024];
        using FileStream stream = new(path, FileMode.CreateNew, FileAccess.Write);
        for (long remaining = size; remaining > 0;)
        {
            int count = (int)Math.Min(remaining, buffer.Length);
            random.NextBytes(buffer.AsSpan(0, count));
            stream.Write(buffer, 0, count);
            remaining -= count;
        }
        return path;
    }

    /// <summary>Deletes the directory.</summary>
    public void Dispose()
    {
        try
        {
            Directory.Delete(FullPath, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
